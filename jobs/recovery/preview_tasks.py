"""RQ entry points of a site, host or plan failover before it runs: the preview, and the re-check of an approved
plan that hands it to the execution job (``jobs.recovery.tasks.run_recovery``) only when nothing moved.

The approval binds to ``jobs.recovery.preview.binding`` (the resolved plan and every VM's step signature). After
the one approval, ``run_recovery_recheck`` reads the fleet again: the same binding enqueues the execution, a
different one (a VM failed over meanwhile, a replica that stopped answering) ends the approval as ``changed``
and posts a fresh preview to request again. No RQ Retry on either: the execution it starts mutates.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from rq import Queue, get_current_job
from rq.serializers import JSONSerializer

from jobs import ports as reporting
from jobs.hyperv import process_fleet
from jobs.hyperv.errors import HyperVError
from jobs.hyperv.fleet import Fleet
from jobs.keys import RECOVERY_PREVIEW_KEY
from jobs.queue import enqueue, new_job_id
from jobs.recovery.live import live_pairs
from jobs.recovery.model import ResolvedPlan, Scope, ScopeKind
from jobs.recovery.plans import PlanError, load_plans
from jobs.recovery.preview import binding, preview_plan
from jobs.recovery.resolve import ScopeError, resolve
from jobs.recovery.tasks import run_recovery

log = logging.getLogger("hvbot.recovery")
PREVIEW_TTL_S = 900


def resolve_scope(fleet: Fleet, scope: Scope) -> ResolvedPlan:
    """The scope's VMs in plan order (recovery plan files; VMs in no plan last); ScopeError or PlanError when it
    names nothing usable."""
    return resolve(scope, load_plans(), live_pairs(fleet), fleet.inventory)


def run_recovery_preview(preview_id: str, kind: str, scope: dict[str, str], reply: dict[str, Any]) -> dict[str, Any]:
    """Resolve the scope, preview every VM's failover, keep it for the Request button, post the message."""
    job = get_current_job()
    assert job is not None, "run_recovery_preview runs inside an RQ job"
    target = Scope(ScopeKind(scope["kind"]), scope["value"])
    try:
        plan = resolve_scope(process_fleet.fleet(), target)
        if not plan.vms():
            raise ScopeError(f"No replicated VM has its primary on {target.kind} {target.value}; nothing to fail over.")
        data = preview_plan(process_fleet.fleet(), plan, kind)
    except (ScopeError, PlanError, HyperVError) as exc:
        data = {"kind": kind, "scope": scope, "error": str(exc)}
    job.connection.set(RECOVERY_PREVIEW_KEY.format(preview_id), json.dumps(data), ex=PREVIEW_TTL_S)
    reporting.current_recovery_previewer().preview(reporting.ReplyTo.from_dict(reply), preview_id, data)
    return {k: data[k] for k in ("kind", "scope", "totals", "error") if k in data}


def changed_vms(bound: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """VMs whose step plan differs between what was approved and what the fleet allows now."""
    before, after = bound["vms"], now["vms"]
    return sorted(vm for vm in set(before) | set(after) if before.get(vm) != after.get(vm))


def run_recovery_recheck(approval_id: str, bound: dict[str, Any], run: dict[str, Any], run_timeout: int,
                         description: str) -> dict[str, Any]:
    """The approved binding against the fleet now: unchanged -> enqueue ``run_recovery(**run)`` once; changed ->
    the approval ends as changed and a fresh preview is posted (the requester asks again)."""
    job = get_current_job()
    assert job is not None, "run_recovery_recheck runs inside an RQ job"
    plan = ResolvedPlan.from_dict(run["plan"])
    data = preview_plan(process_fleet.fleet(), plan, run["kind"])
    now = binding(data)
    if now == bound:
        queue = Queue(job.origin, connection=job.connection, serializer=JSONSerializer)
        enqueue(queue, run_recovery, run, job_id=f"rc{approval_id}",
                timeout=run_timeout, description=description)  # no Retry: its steps mutate
        return {"ok": True, "enqueued": f"rc{approval_id}"}
    changed = changed_vms(bound, now)
    preview_id = new_job_id("rp")
    job.connection.set(RECOVERY_PREVIEW_KEY.format(preview_id), json.dumps(data), ex=PREVIEW_TTL_S)
    log.info("recovery plan changed before it ran", extra={"approval_id": approval_id, "vms": changed[:20]})
    reporting.current_recovery_previewer().changed(run["card"], approval_id, reporting.ReplyTo.from_dict(run["reply"]),
                                                   preview_id, data, changed)
    return {"ok": False, "changed": changed}
