"""RQ entry point of the read-only lookups (`/hyperv ips|vms|memory|teaming|checkpoints|points`).

Thin: decode the JSON arguments, run the query against this process's fleet, report through jobs.ports.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import structlog
from rq import get_current_job

from jobs import ports as reporting
from jobs.failover import run as failover
from jobs.hyperv import process_fleet
from jobs.hyperv.fleet import Fleet
from jobs.inventory import queries as inventory
from jobs.liveness import claim_final, clear_message, heartbeat
from jobs.ports import ReplyTo
from jobs.report import Report

Lookup = Callable[[Fleet, list[str], str | None, dict[str, str]], Report]


def _one(args: list[str]) -> str | None:
    return args[0] if args else None


LOOKUPS: dict[str, Lookup] = {  # verb -> query(fleet, args, host, options such as {"at-max": "1"})
    "ips": lambda fleet, args, host, options: inventory.find_ips(fleet, targets=tuple(args), host=host),
    "vms": lambda fleet, args, host, options: inventory.list_vms(fleet, name_filter=_one(args), host=host),
    "memory": lambda fleet, args, host, options: inventory.memory(fleet, vm=_one(args), host=host,
                                                                    at_max="at-max" in options),
    "teaming": lambda fleet, args, host, options: inventory.teaming(fleet, vm=_one(args), host=host),
    "checkpoints": lambda fleet, args, host, options: inventory.checkpoints(fleet, args[0], host=host),
    "points": lambda fleet, args, host, options: failover.points_report(fleet, args[0], host=host),
}


def run_lookup(
    verb: str, args: list[str], host: str | None, reply: dict[str, Any], heartbeat_seconds: float = 10.0,
    options: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A read-only fleet lookup (ips, vms, memory, teaming, checkpoints, points); returns the Report as a dict."""
    job = get_current_job()
    assert job is not None, "run_lookup runs inside an RQ job"
    target = ReplyTo.from_dict(reply)
    reporter = reporting.current()
    # log lines of this job (including per-host ones) carry who asked for what
    structlog.contextvars.bind_contextvars(job_id=job.id, slack_user=target.user, command=target.command)
    with heartbeat(job.connection, job.id, heartbeat_seconds):
        job.meta["pid"] = os.getpid()
        job.save_meta()  # type: ignore[no-untyped-call]
        reporter.started(job.id, target)
        try:
            data: dict[str, Any] = LOOKUPS[verb](process_fleet.fleet(), list(args), host, dict(options or {})).to_dict()
        except Exception as exc:
            if claim_final(job.connection, job.id):
                reporter.failed(job.id, target, clear_message(exc))
            raise
    if claim_final(job.connection, job.id):
        reporter.finished(job.id, target, data)
    return data
