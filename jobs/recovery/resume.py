"""Resume of a recovery run: the VMs it did not finish, previewed again like a new site/host/plan failover.

The preview is the same as for a scope (``jobs.recovery.preview.preview_plan``), stored under the same key and
posted through the same port, so the requester's Request opens one new two-person approval, bound to exactly
these VMs, and the approved run (``run_recovery``) touches only them.
"""

from __future__ import annotations

import json
from typing import Any

from rq import get_current_job

from jobs import ports
from jobs.hyperv import process_fleet
from jobs.hyperv.errors import HyperVError
from jobs.keys import RECOVERY_PREVIEW_KEY
from jobs.recovery.preview import preview_plan
from jobs.recovery.preview_tasks import PREVIEW_TTL_S
from jobs.recovery.progress import RunProgress
from jobs.recovery.tasks import remaining_plan

GONE = ("Nothing to resume: every VM of run {0} is done, or the run is no longer known (runs are kept 14 days). "
        "Start a new failover of the site, host or plan to see where things stand.")


def run_resume_preview(preview_id: str, run_id: str, reply: dict[str, Any]) -> dict[str, Any]:
    """Preview the VMs of ``run_id`` that are not done, keep it for the Request button, and post it."""
    job = get_current_job()
    assert job is not None, "run_resume_preview runs inside an RQ job"
    meta = RunProgress(job.connection, run_id).meta()
    kind, scope = str(meta.get("kind", "unplanned")), meta.get("scope") or {"kind": "site", "value": "?"}
    plan = remaining_plan(job.connection, run_id)
    if plan is None:
        data: dict[str, Any] = {"kind": kind, "scope": scope, "error": GONE.format(run_id)}
    else:
        try:
            data = preview_plan(process_fleet.fleet(), plan, kind)
        except HyperVError as exc:
            data = {"kind": kind, "scope": scope, "error": str(exc)}
    job.connection.set(RECOVERY_PREVIEW_KEY.format(preview_id), json.dumps(data), ex=PREVIEW_TTL_S)
    ports.current_recovery_previewer().preview(ports.ReplyTo.from_dict(reply), preview_id, data)
    return {k: data[k] for k in ("kind", "scope", "totals", "error") if k in data}
