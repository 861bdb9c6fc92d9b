"""Resume / Resync from a replica alert: `Resume-VMReplication -VMName VM [-Resynchronize]` on the alert's host.

Queued by the alert message's menu (operators only, after Slack's confirm dialog). The answer is a one-row
Report through `jobs.ports` (the same message path as lookups), exactly once per job (`claim_final`).
hyperv.md §7: a resync deletes recovery points and reads whole VHDs; that is why it asks for confirmation.
"""

from __future__ import annotations

from typing import Any

from rq import get_current_job

from jobs import ports as reporting
from jobs.hyperv import process_fleet
from jobs.hyperv.commands import SIMPLE, Pipeline, single
from jobs.liveness import claim_final, clear_message
from jobs.ports import ReplyTo
from jobs.report import Report

WILDCARDS = frozenset("*?[]")  # -VMName takes PowerShell wildcards: one of these would resume many VMs


def resume_pipeline(vm: str, resynchronize: bool) -> Pipeline:
    """The one VM's resume; a name with wildcards is refused here too (the chat side already refuses it)."""
    if not vm or WILDCARDS & set(vm):
        raise ValueError(f"Resume needs one VM named exactly, not {vm[:40]!r}")
    return single("Resume-VMReplication", VMName=[vm], Resynchronize=resynchronize or None,
                  ReplicationRelationshipType=SIMPLE)


def run_resume(host: str, vm: str, resynchronize: bool, reply: dict[str, Any]) -> dict[str, Any]:
    job = get_current_job()
    assert job is not None, "run_resume runs inside an RQ job"
    target = ReplyTo.from_dict(reply)
    pipe = resume_pipeline(vm, resynchronize)
    try:
        process_fleet.fleet().run(host, pipe)
    except Exception as exc:
        if claim_final(job.connection, job.id):
            reporting.current().failed(job.id, target, clear_message(exc))
        raise
    action = "resynchronization started" if resynchronize else "replication resumed"
    report = Report("replica_action", ["host", "vm", "action"], [{"host": host, "vm": vm, "action": action}],
                    hosts_ok=[host]).to_dict()
    if claim_final(job.connection, job.id):
        reporting.current().finished(job.id, target, report)
    return report
