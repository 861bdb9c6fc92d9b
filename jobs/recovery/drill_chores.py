"""Housekeeping chores of scheduled drills: start the drills that are due, and say which plans went untested.

Schedules come from chat (`/hyperv drill PLAN --every 30d --at "Sun 03:00"`, kept in Redis) and from plan files
(``drill:``); a chat schedule replaces its plan file's. The monitor runs these chores under its lease; a drill
that is due is also claimed in Redis (``DrillStore.claim_due``), so a worker's start-up housekeeping or a second
monitor never starts it twice. A schedule ``without_approval`` starts the drill (audited, as "scheduled"); any
other is announced as due, for an operator to start with `/hyperv drill PLAN`.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from jobs import ports, units
from jobs.audit import AuditEntry, AuditLog
from jobs.liveness import AbandonedJobSettings
from jobs.queue import enqueue, new_job_id
from jobs.recovery.drill_schedule import next_due, overdue
from jobs.recovery.drill_store import DrillStore, StoredSchedule
from jobs.recovery.drill_targets import DrillTargetError, load_plans
from jobs.recovery.drill_tasks import run_drill

log = logging.getLogger("hvbot.drill")
DRILL_JOB_TIMEOUT_S = 4 * 3600


def _plan_file_schedules(store: DrillStore, now: datetime) -> None:
    """A plan file's ``drill:`` becomes a stored schedule the first time it is seen (``since`` = then)."""
    try:
        plans = load_plans()
    except DrillTargetError as exc:
        log.warning("scheduled drills: %s", exc)
        return
    known = {s.plan.lower() for s in store.schedules()}
    for plan in plans:
        if plan.drill is not None and plan.name.lower() not in known:
            store.set_schedule(StoredSchedule(plan.name, plan.drill, now.timestamp(), "plan file", {}))


def _when(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None


def start_due_drills(connection: redis.Redis, now: datetime) -> int:
    """Housekeeping chore: start (or announce) every scheduled drill that is due; returns how many."""
    store, started = DrillStore(connection), 0
    _plan_file_schedules(store, now)
    for stored in store.schedules():
        due = next_due(stored.schedule, _when(stored.since) or now, _when(stored.last_started))
        if now < due or not store.claim_due(stored.plan, due):
            continue
        store.mark_started(stored, now.timestamp())
        started += 1
        if stored.schedule.without_approval:
            _enqueue(connection, stored, due)
        else:
            ports.current_drills().notice(
                f"due:{stored.plan}:{int(due.timestamp())}", f"The scheduled drill of plan {stored.plan} is due "
                f"(set by {stored.by}). It needs an operator: run `/hyperv drill {stored.plan}`.", urgent=False)
            AuditLog(connection).record(AuditEntry("scheduler", str(stored.reply.get("channel", "")),
                                                   f"drill {stored.plan} (scheduled)", "accepted",
                                                   "due: announced for an operator to start"))
    return started


def _enqueue(connection: redis.Redis, stored: StoredSchedule, due: datetime) -> None:
    settings = AbandonedJobSettings()
    queue = Queue(settings.queue, connection=connection, serializer=JSONSerializer)
    drill_id, job_id = secrets.token_hex(6), new_job_id("dr")
    reply = stored.reply or {"channel": "", "user": "", "command": f"drill {stored.plan}"}
    enqueue(queue, run_drill, {"drill_id": drill_id, "target": stored.plan, "host": None, "report_to": reply,
                               "trigger": "scheduled", "requested_by": f"schedule set by {stored.by}",
                               "heartbeat_seconds": settings.abandoned_check_seconds},
            job_id=job_id, timeout=DRILL_JOB_TIMEOUT_S, description=f"scheduled drill of {stored.plan}")
    AuditLog(connection).record(AuditEntry("scheduler", str(reply.get("channel", "")),
                                           f"drill {stored.plan} (scheduled)", "accepted",
                                           f"due {units.timestamp(due)}; no second approval "
                                           f"(schedule set by {stored.by})", job_id))


def untested_plans(connection: redis.Redis, now: datetime) -> int:
    """Housekeeping chore: a low-priority notice, once per period, for each plan not drilled within its period."""
    store, raised = DrillStore(connection), 0
    for stored in store.schedules():
        last = store.last_success("plan", stored.plan)
        last_at = _when(last["at"]) if last else None
        if not overdue(stored.schedule, _when(stored.since) or now, last_at, now):
            continue
        period = int(stored.schedule.every_s)
        if store.notice_once(f"untested:{stored.plan.lower()}", period):
            since = f"last successful drill {last_at:%Y-%m-%d %H:%M} UTC" if last_at else "never drilled successfully"
            ports.current_drills().notice(
                f"untested:{stored.plan}", f"Plan {stored.plan} is untested: {since}, and its period is "
                f"{period / 86400:g} day(s). Run `/hyperv drill {stored.plan}`.", urgent=False)
            raised += 1
    return raised
