"""`/hyperv teaming VM on|off` on the worker: Set-VMNetworkAdapter -AllowTeaming, verified, reported, audited.

hyperv.md §1.11: `-VMName` is a single string in the VMName parameter set; the value is an OnOffState (On, Off);
the result is read back with Get-VMNetworkAdapter. A name found on several hosts needs --host: changing every
copy (e.g. a primary and its replica) at once is not what someone typing one VM name expects.
"""

from __future__ import annotations

from typing import Any

import redis
from rq import get_current_job

from jobs import ports as reporting
from jobs import units
from jobs.audit import AuditEntry, AuditLog
from jobs.hyperv import process_fleet
from jobs.hyperv.commands import Pipeline, single
from jobs.hyperv.errors import HyperVError
from jobs.inventory.queries import teaming
from jobs.liveness import claim_final, heartbeat
from jobs.ports import ReplyTo
from jobs.report import Report


class TeamingRefused(Exception):
    """One clear sentence: why nothing was changed."""


def set_teaming_pipeline(vm: str, state: str) -> Pipeline:
    """-VMName of Set-VMNetworkAdapter is one String (unlike Get-VMNetworkAdapter's String[])."""
    return single("Set-VMNetworkAdapter", VMName=vm, AllowTeaming=state)


def change_teaming(fleet: Any, vm: str, state: str, host: str | None) -> Report:
    """Set AllowTeaming on the VM's adapters on its one host, then return Get-VMNetworkAdapter's view of them."""
    before = teaming(fleet, vm, host)
    hosts = sorted({str(row["host"]) for row in before.rows})
    if not hosts:
        where = f" on {host}" if host else ""
        errors = "; ".join(f"{e['host']}: {e['message']}" for e in before.errors)
        raise TeamingRefused(f"No VM named {vm}{where} was found" + (f" ({errors})" if errors else "") + ".")
    if len(hosts) > 1:
        raise TeamingRefused(f"{vm} exists on several hosts ({', '.join(hosts)}); say which one with --host.")
    target = hosts[0]
    fleet.run(target, set_teaming_pipeline(vm, state))
    after = teaming(fleet, vm, target)
    wrong = [str(r["adapter"]) for r in after.rows if str(r["allow_teaming"]) != state]
    if wrong or not after.rows:
        raise TeamingRefused(f"Set-VMNetworkAdapter ran on {target}, but AllowTeaming is not {state} on "
                             f"{', '.join(wrong) or 'any adapter'} when read back.")
    return after


def _audit(conn: redis.Redis, reply: ReplyTo, outcome: str, detail: str, job_id: str) -> None:
    AuditLog(conn).record(AuditEntry(reply.user, reply.channel, reply.command, outcome, detail, job_id))


def run_set_teaming(vm: str, state: str, host: str | None, reply: dict[str, Any],
                    heartbeat_seconds: float = 10.0) -> dict[str, Any]:
    """RQ entry point (no Retry: it mutates). The requester's message shows the adapters as read back."""
    job = get_current_job()
    assert job is not None, "run_set_teaming runs inside an RQ job"
    target, reporter, conn = ReplyTo.from_dict(reply), reporting.current(), job.connection
    with heartbeat(conn, job.id, heartbeat_seconds):
        reporter.started(job.id, target)
        try:
            data = change_teaming(process_fleet.fleet(), vm, state, host).to_dict()
        except (TeamingRefused, HyperVError) as exc:
            message = str(exc) if isinstance(exc, TeamingRefused) else exc.message
            _audit(conn, target, "failed", message, job.id)
            if claim_final(conn, job.id):
                reporter.failed(job.id, target, message)
            return {"ok": False, "error": message}
    adapters = units.plural(len(data["rows"]), "adapter")
    _audit(conn, target, "done", f"AllowTeaming {state} verified on {adapters}", job.id)
    if claim_final(conn, job.id):
        reporter.finished(job.id, target, data)
    return data
