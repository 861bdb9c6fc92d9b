"""RQ entry point of failover drills (``run_drill``), and the chore that cleans up after a drill whose worker died.

The drill is registered in Redis before its first mutating step and each VM's state is written before each step
(``jobs.recovery.drill_store``). When the worker is killed, ``sweep_dead_drills`` (housekeeping, and the chat
server's abandoned-job watcher) finds the drill without a heartbeat, removes every test VM it may have left
(Stop-VMFailover), reports the drill as abandoned, and alerts on-call when a test VM cannot be removed (retried
every round until it can). No RQ Retry is set: the steps mutate.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import redis
from rq import get_current_job

from jobs import ports
from jobs import units
from jobs.audit import AuditEntry, AuditLog
from jobs.failover.gather import FailoverLookupError
from jobs.hyperv import process_fleet
from jobs.hyperv.errors import HyperVError
from jobs.hyperv.fleet import Fleet
from jobs.keys import ALIVE_KEY
from jobs.liveness import claim_final, heartbeat
from jobs.locks import release_owned_by
from jobs.recovery import drill, drill_groups, drill_report
from jobs.recovery.drill_store import NEEDS_CLEANUP, DrillStore, RunRecord
from jobs.recovery.drill_targets import DrillTargetError, load_plans, resolve_target
from jobs.recovery.model import Member, ResolvedGroup

log = logging.getLogger("hvbot.drill")
CLEANUP_NOTICE_EVERY_S = 3600  # a test VM that cannot be removed is re-alerted at most hourly


def run_drill(drill_id: str, target: str, host: str | None, report_to: dict[str, Any], trigger: str = "manual",
              requested_by: str = "", heartbeat_seconds: float = 5.0,
              options: dict[str, Any] | None = None) -> dict[str, Any]:
    """``report_to`` (a ReplyTo dict) is not named ``reply``: the generic abandoned-job report ("nothing was
    changed") would then claim a dead drill's final message, and a drill did change things: its test VMs."""
    job = get_current_job()
    assert job is not None, "run_drill runs inside an RQ job"
    conn, reply_to, started = job.connection, ports.ReplyTo.from_dict(report_to), datetime.now(UTC)
    store, reporter = DrillStore(conn), ports.current_drills()
    with heartbeat(conn, job.id, heartbeat_seconds):
        fleet = process_fleet.fleet()
        try:
            plan, groups = resolve_target(fleet, target, host, load_plans())
        except (DrillTargetError, FailoverLookupError, HyperVError) as exc:
            message = str(exc) if not isinstance(exc, FailoverLookupError) else \
                f"{exc} No recovery plan is named {target} either."
            report = drill_report.build(drill_id, target, "", trigger, requested_by, started, {"vms": []}, message)
            return _final(conn, job.id, drill_id, reply_to, report)
        members = [m for g in groups for m in g.vms]
        store.register(RunRecord(drill_id, job.id, target, plan, [asdict(m) for m in members], report_to, trigger,
                                 time.time()))
        done: list[str] = []

        def progress(row: dict[str, Any]) -> None:
            done.append(row["vm"])
            reporter.progress(drill_id, reply_to, f"Drill of {plan or target}: {len(done)} of {len(members)} "
                                                  f"VMs done (last: {row['vm']}, {row['result']})")

        d = drill.Drill(fleet, store, drill_id, drill.DrillOptions(**options) if options else
                        drill.DrillSettings().options(), on_vm=progress)
        reporter.progress(drill_id, reply_to, f"Drill of {plan or target}: checking the test networks of "
                                              f"{units.plural(len(members), 'VM')} …")
        outcome, error, left = _drive(d, groups)
        report = drill_report.build(drill_id, target, plan, trigger, requested_by, started, outcome, error)
        _record_successes(store, report)
        if report["left_behind"] or left:
            _cleanup_notice(reporter, drill_id, report["problems"])  # the chore retries until they are gone
        else:
            store.finish(drill_id)
        return _final(conn, job.id, drill_id, reply_to, report)


def _drive(d: drill.Drill, groups: tuple[ResolvedGroup, ...]) -> tuple[dict[str, Any], str, list[str]]:
    """(outcome, error, test VMs left behind): a bug must still leave no test VM behind, and be reported."""
    try:
        return drill_groups.run(d, groups), "", []
    except Exception as exc:
        log.exception("drill %s failed", d.drill_id)
        error = f"the drill stopped on an internal error ({type(exc).__name__})"
        left = clean_leftovers(d.fleet, d.store, store_run(d.store, d.drill_id))
        if left:
            error += "; test VMs could not be removed: " + "; ".join(left)
        return {"vms": []}, error, left


def store_run(store: DrillStore, drill_id: str) -> RunRecord | None:
    return next((r for r in store.runs() if r.drill_id == drill_id), None)


def _final(conn: redis.Redis, job_id: str, drill_id: str, reply: ports.ReplyTo, report: dict[str, Any],
           reporter: ports.DrillReporter | None = None) -> dict[str, Any]:
    if claim_final(conn, job_id):  # audited first: the evidence stays even when Slack does not answer
        outcome = "done" if report["ok"] else "refused" if report["refused"] else \
            "abandoned" if report["abandoned"] else "failed"
        detail = " | ".join(drill_report.summary_lines(report))
        AuditLog(conn).record(AuditEntry(reply.user or report["requested_by"], reply.channel,
                                         f"drill {report['target']} ({report['trigger']})", outcome, detail, job_id))
        (reporter or ports.current_drills()).report(drill_id, reply, report)
    return report


def _record_successes(store: DrillStore, report: dict[str, Any]) -> None:
    at = time.time()
    for row in report["vms"]:
        if row["result"] == "passed":
            store.record_success("vm", row["vm"], at, {"drill_id": report["drill_id"], "plan": report["plan"],
                                                       "time_to_heartbeat_s": row["time_to_heartbeat_s"]})
    if report["ok"] and report["plan"]:
        store.record_success("plan", report["plan"], at, {"drill_id": report["drill_id"],
                                                          "measured_recovery_s": report["measured_recovery_s"]})


def clean_leftovers(fleet: Fleet, store: DrillStore, run: RunRecord | None) -> list[str]:
    """Remove every test VM the drill may have made; returns what could not be removed (empty: all clean)."""
    if run is None:
        return []
    problems = []
    states = store.vm_states(run.drill_id)
    for data in run.vms:
        m = Member(**data)
        if states.get(m.vm, {}).get("state") not in NEEDS_CLEANUP:
            continue
        problem = drill.cleanup_vm(fleet, m)
        if problem is None:
            store.set_vm(run.drill_id, m.vm, "cleaned", replica=m.replica_host, by="housekeeping")
            release_owned_by(store.redis, m.vm, f"drill:{run.drill_id}")
        else:
            problems.append(problem)
    return problems


def _cleanup_notice(reporter: ports.DrillReporter, drill_id: str, problems: list[str]) -> None:
    reporter.notice(f"cleanup:{drill_id}", f"Drill {drill_id}: test VMs could not be removed. "
                    + "; ".join(problems)[:2500] + ". Remove them with Stop-VMFailover -VMName <VM> on the replica "
                    "host; hvbot retries every housekeeping round.", urgent=True)


def sweep_dead_drills(connection: redis.Redis, now: datetime, grace_seconds: float = 10.0,
                      reporter: ports.DrillReporter | None = None, fleet: Fleet | None = None) -> int:
    """Housekeeping chore: drills whose worker stopped heart-beating are cleaned up and reported once.
    Also retries drills whose cleanup failed earlier. Returns how many drills were settled. ``reporter``: the
    chat server's watcher passes its own; by default the process's installed one. ``fleet``: by default the
    process's (HVBOT_INVENTORY)."""
    store, settled = DrillStore(connection), 0
    for run in store.runs():
        if connection.exists(ALIVE_KEY.format(run.job_id)) or now.timestamp() - run.started < grace_seconds:
            continue
        if not store.take_cleanup(run.drill_id):
            continue  # another process is on it
        try:
            settled += _settle(connection, store, run, reporter or ports.current_drills(), fleet)
        finally:
            store.drop_cleanup(run.drill_id)
    return settled


def _settle(connection: redis.Redis, store: DrillStore, run: RunRecord, reporter: ports.DrillReporter,
            fleet: Fleet | None) -> int:
    try:
        problems = clean_leftovers(fleet or process_fleet.fleet(), store, run)
    except Exception as exc:  # noqa: BLE001 - no fleet (inventory) or a host error: alert, retry next round
        problems = [f"cleanup could not run ({type(exc).__name__}: {str(exc)[:200]})"]
    if problems:
        if store.notice_once(f"cleanup:{run.drill_id}", CLEANUP_NOTICE_EVERY_S):
            _cleanup_notice(reporter, run.drill_id, problems)
        return 0
    store.finish(run.drill_id)
    states = store.vm_states(run.drill_id)
    for m in run.vms:  # locks of VMs the drill had not reached yet
        release_owned_by(connection, m["vm"], f"drill:{run.drill_id}")
    rows = [{**m, "result": "failed", "cleaned": True,
             "problems": [f"the worker stopped during the drill (last state "
                          f"{states.get(m['vm'], {}).get('state', 'not started')})"]}
            for m in run.vms]
    report = drill_report.build(run.drill_id, run.target, run.plan, run.trigger, "", datetime.fromtimestamp(
        run.started, UTC), {"vms": rows, "abandoned": True})
    _final(connection, run.job_id, run.drill_id, ports.ReplyTo.from_dict(run.reply), report, reporter)
    return 1
