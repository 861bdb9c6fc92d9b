"""RQ entry points of Replica-VM backups from chat: backup-check with retries, backup windows, the on-call
alert's Retry / Resynchronize, and Checkpoint-VM.

Each request has one message, keyed by `key` (jobs.ports.Reporter.update): a transient "not ready" check
schedules its next attempt (jobs.backup.retry.decide says when) and that attempt updates the same message.
Windows reuse jobs.backup.operations (recorded before the pause; the housekeeping chore resumes them whatever
happens to this worker), so the end job scheduled here is a convenience, not the guarantee.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from rq import Queue, get_current_job
from rq.job import Job
from rq.serializers import JSONSerializer

from jobs import ports as reporting
from jobs.backup import operations as backup
from jobs.backup.conditions import Readiness
from jobs.backup.export import ExportError, owner_host
from jobs.backup.retry import Decision, Outcome, decide
from jobs.backup.settings import BackupSettings
from jobs.backup.window import Window, WindowError, WindowStatus
from jobs.hyperv import process_fleet
from jobs.hyperv.commands import SIMPLE, Pipeline, single
from jobs.hyperv.errors import HyperVError
from jobs.hyperv.records import prop
from jobs.keys import BACKUP_WINDOW_MESSAGE_KEY
from jobs.liveness import claim_final, heartbeat
from jobs.ports import ReplyTo
from jobs.queue import enqueue

KEEP_S = 86400  # how long RQ keeps a backup job's result or failure
SIDE_REASON = {  # why the configured side (jobs.backup.window, hyperv.md §1.8)
    "primary": "paused on the primary: a primary-side pause leaves replica health at Warning, which blocks nothing",
    "replica": "paused on the replica (HVBOT_BACKUP_PAUSE_SIDE=replica): replica health may turn Critical",
}


def enqueue_backup_job(queue: Queue, func: Callable[..., Any], kwargs: Mapping[str, Any], job_id: str, timeout: int,
                       at: datetime | None = None) -> Job:
    """Enqueue (or schedule) a backup or export job: kept a day, a failure reported to the requester."""
    return enqueue(queue, func, kwargs, job_id=job_id, timeout=timeout, result_ttl=KEEP_S, failure_ttl=KEEP_S,
                   report_failure=True, description=f"{func.__name__} {kwargs.get('vm', '')}", at=at)


@contextmanager
def running(heartbeat_seconds: float) -> Iterator[tuple[Job, Queue]]:
    job = get_current_job()
    assert job is not None, "runs inside an RQ job"
    queue = Queue(job.origin, connection=job.connection, serializer=JSONSerializer)
    with heartbeat(job.connection, job.id, heartbeat_seconds):
        job.meta["pid"] = os.getpid()
        job.save_meta()  # type: ignore[no-untyped-call]
        yield job, queue


def _hhmm(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%H:%M:%S UTC")


# -- backup-check ------------------------------------------------------------------------------------------


def check_text(vm: str, readiness: Readiness | None, decision: Decision, error: str = "") -> str:
    """The message of one attempt: verdict, each holding condition (transient or not, what to do), retry plan."""
    icon = {Outcome.DONE: ":white_check_mark:", Outcome.RETRY: ":hourglass_flowing_sand:"}.get(
        decision.outcome, ":x:")
    lines = [f"{icon} *backup-check {vm}* (attempt {decision.attempt} of {decision.max_attempts})"]
    if readiness is None:
        lines.append(error)
    elif readiness.ready:
        lines.append(f"{vm} is ready for a Replica-VM backup.")
    else:
        for c in readiness.holding:
            kind = "transient, clears by itself" if c.transient else "needs an operator"
            number = f"#{c.number} " if c.number else ""
            lines.append(f"• {number}{c.title} ({kind}). {c.detail} {c.action}".rstrip())
    if readiness is not None:
        for c in readiness.unchecked:
            lines.append(f"• not observable or only partly: #{c.number} {c.title}. {c.detail}")
    if decision.outcome is Outcome.RETRY and decision.retry_at is not None:
        lines.append(f"Next try at {_hhmm(decision.retry_at)} (attempt {decision.attempt + 1} of "
                     f"{decision.max_attempts}).")
    elif decision.outcome is Outcome.GIVE_UP:
        lines.append("Gave up: " + decision.reason)
    return "\n".join(lines)


def run_check(vm: str, key: str, reply: dict[str, Any], attempt: int = 1, heartbeat_seconds: float = 10.0) -> dict[str, Any]:
    """One readiness attempt; a transient "not ready" schedules the next one (same message)."""
    target, reporter, settings = ReplyTo.from_dict(reply), reporting.current(), BackupSettings()
    policy = settings.retry_policy()
    with running(heartbeat_seconds) as (job, queue):
        reporter.update(key, target, f":mag: *backup-check {vm}*: checking … (attempt {attempt} of "
                                     f"{policy.max_attempts})")
        now = datetime.now(UTC)
        readiness: Readiness | None = None
        try:
            readiness = backup.check(process_fleet.fleet(), vm)
            decision = decide(readiness, attempt, now, policy)
            error = ""
        except backup.BackupError as err:
            decision, error = _error_decision(err, attempt, now, settings), err.message
        reporter.update(key, target, check_text(vm, readiness, decision, error))
        if decision.outcome is Outcome.RETRY and decision.retry_at is not None:
            enqueue_backup_job(queue, run_check,
                               {"vm": vm, "key": key, "reply": reply, "attempt": attempt + 1,
                                "heartbeat_seconds": heartbeat_seconds}, f"{key}-{attempt + 1}",
                               int(job.timeout or 300), at=decision.retry_at)
        claim_final(job.connection, job.id)  # reported: the failure callback must not post again
    return decision.to_dict()


def _error_decision(err: backup.BackupError, attempt: int, now: datetime, settings: BackupSettings) -> Decision:
    policy = settings.retry_policy()
    if err.transient and attempt < policy.max_attempts:
        delay = policy.delays()[attempt - 1]
        return Decision(Outcome.RETRY, attempt, policy.max_attempts, err.message, now + timedelta(seconds=delay), True)
    return Decision(Outcome.GIVE_UP, attempt, policy.max_attempts, err.message, transient=err.transient)


# -- backup windows ----------------------------------------------------------------------------------------


def remember_window_message(connection: redis.Redis, vm: str, key: str, reply: dict[str, Any],
                            start_job: str = "") -> None:
    data = {"key": key, "reply": reply, "start_job": start_job}
    connection.set(BACKUP_WINDOW_MESSAGE_KEY.format(vm.lower()), json.dumps(data), ex=7 * 86400)


def window_message(connection: redis.Redis, vm: str) -> dict[str, Any] | None:
    raw = connection.get(BACKUP_WINDOW_MESSAGE_KEY.format(vm.lower()))
    return json.loads(raw) if raw else None


def run_window_start(vm: str, seconds: int, key: str, reply: dict[str, Any], user: str,
                     heartbeat_seconds: float = 10.0) -> dict[str, Any]:
    """Record the window, pause replication, schedule the end job; one status message."""
    target, reporter, settings = ReplyTo.from_dict(reply), reporting.current(), BackupSettings()
    with running(heartbeat_seconds) as (job, queue):
        store = backup.window_store(job.connection, settings)
        now = datetime.now(UTC)
        try:
            window = backup.start_window(process_fleet.fleet(), store, vm, now, now + timedelta(seconds=seconds), user, now)
        except (backup.BackupError, WindowError) as err:
            reporter.update(key, target, f":x: *backup-window {vm}*: not started: {_message(err)}")
            claim_final(job.connection, job.id)
            return {"ok": False, "error": _message(err)}
        remember_window_message(job.connection, window.vm, key, reply)
        enqueue_backup_job(queue, run_window_end,
                           {"vm": window.vm, "key": key, "reply": reply, "user": user, "scheduled": True,
                            "heartbeat_seconds": heartbeat_seconds}, f"{key}-end", int(job.timeout or 300),
                           at=window.end)
        reporter.update(key, target, (
            f":double_vertical_bar: *backup-window {window.vm}*: replication paused on {window.host} until "
            f"{_hhmm(window.end)} ({SIDE_REASON[window.side.value]}). It is resumed then, and by the housekeeping "
            f"sweep if this worker is gone. End it early with `/hyperv backup-window {window.vm} end`."))
        claim_final(job.connection, job.id)
    return {"ok": True, "window": window.to_dict()}


def run_window_end(vm: str, key: str, reply: dict[str, Any], user: str, scheduled: bool = False,
                   heartbeat_seconds: float = 10.0) -> dict[str, Any]:
    """End the window now: resume and verify replication runs again (failures are retried by housekeeping)."""
    target, reporter, settings = ReplyTo.from_dict(reply), reporting.current(), BackupSettings()
    with running(heartbeat_seconds) as (job, _):
        store = backup.window_store(job.connection, settings)
        known = window_message(job.connection, vm)
        if known:  # the window's own message shows the end too
            key, target = known["key"], ReplyTo.from_dict(known["reply"])
        window = store.get(vm)
        if window is None or window.status is not WindowStatus.OPEN:
            text = _no_open_window(job.connection, vm, known, scheduled)
            if text:
                reporter.update(key, target, text)
            claim_final(job.connection, job.id)
            return {"ok": True, "resumed": False}
        who = "at the end of the window" if scheduled else f"ended by <@{user}>"
        try:
            ended = backup.end_window(process_fleet.fleet(), store, window.vm, datetime.now(UTC), settings)
            text = (f":arrow_forward: *backup-window {ended.window.vm}*: {who}; replication resumed on "
                    f"{ended.window.host} and verified: {ended.resumed.text()}.")
            ok = True
        except backup.BackupError as err:
            text = (f":warning: *backup-window {window.vm}*: {who}, but {err.message}. hvbot keeps retrying with "
                    "backoff and alerts on-call if it keeps failing.")
            ok = False
        reporter.update(key, target, text)
        claim_final(job.connection, job.id)
    return {"ok": ok}


def _no_open_window(connection: redis.Redis, vm: str, known: dict[str, Any] | None, scheduled: bool) -> str:
    if scheduled:
        return ""  # ended early or resumed by housekeeping: the message already says so
    start_job = (known or {}).get("start_job")
    if start_job and Job.exists(start_job, connection):
        Job.fetch(start_job, connection=connection, serializer=JSONSerializer).cancel()
        return f":no_entry_sign: *backup-window {vm}*: the scheduled window was cancelled before it started."
    return f":information_source: *backup-window {vm}*: there is no open backup window; nothing to resume."


def _message(err: Exception) -> str:
    return err.message if isinstance(err, backup.BackupError) else str(err)


# -- the on-call alert's buttons ---------------------------------------------------------------------------

ALERT_ACTIONS = [{"action": "bk_retry", "label": "Retry resume", "value": "{vm}"},
                 {"action": "bk_resync", "label": "Resynchronize", "value": "{vm}", "style": "danger"}]


def run_alert_action(vm: str, resync: bool, key: str, reply: dict[str, Any], user: str,
                     heartbeat_seconds: float = 10.0) -> dict[str, Any]:
    """Retry: Resume-VMReplication and verify; Resynchronize: Resume-VMReplication -Resynchronize. Both under the
    window's lease, so they never interleave with a housekeeping resume."""
    target, reporter, settings = ReplyTo.from_dict(reply), reporting.current(), BackupSettings()
    what = "Resynchronize" if resync else "Retry"
    with running(heartbeat_seconds) as (job, _):
        store = backup.window_store(job.connection, settings)
        with store.lease(vm) as held:
            window = store.get(vm)
            if not held:
                text, ok = f"{vm}: another process is resuming it right now; try again in a minute.", False
            elif window is None or window.status is not WindowStatus.OPEN:
                text, ok = f"{vm}: replication was already resumed; nothing to do.", True
            else:
                text, ok = _alert_action(window, resync, settings, user)
                if ok:
                    store.mark_resumed(window.vm, datetime.now(UTC))
        actions = None if ok else [{**a, "value": vm} for a in ALERT_ACTIONS]
        reporter.update(key, target, f"{':white_check_mark:' if ok else ':x:'} {what} by <@{user}>: {text}", actions)
        claim_final(job.connection, job.id)
    return {"ok": ok, "text": text}


def _alert_action(window: Window, resync: bool, settings: BackupSettings, user: str) -> tuple[str, bool]:
    fleet = process_fleet.fleet()
    try:
        if resync:
            fleet.session(window.host).run(single("Resume-VMReplication", VMName=[window.vm], Resynchronize=True,
                                                     ReplicationRelationshipType=SIMPLE))
            state, health = backup.replication_status(fleet, window.host, window.vm)
            return f"resynchronization of {window.vm} started on {window.host} (now {state} / {health}).", True
        resumed = backup.resume_and_verify(fleet, window, settings)
        return f"replication of {window.vm} resumed on {window.host}: {resumed.text()}.", True
    except (HyperVError, backup.BackupError) as err:
        return f"{window.vm} on {window.host}: {err.message}", False


# -- checkpoint --------------------------------------------------------------------------------------------


def checkpoint_pipeline(vm: str, name: str | None) -> Pipeline:
    """Checkpoint-VM -Name is the VM (String[]); -SnapshotName, the checkpoint's name, is one String."""
    return single("Checkpoint-VM", Name=[vm], SnapshotName=name or None, Passthru=True)


def run_checkpoint(vm: str, name: str | None, key: str, reply: dict[str, Any],
                   heartbeat_seconds: float = 10.0) -> dict[str, Any]:
    """Checkpoint-VM on the host that runs the VM; the message names the checkpoint made."""
    target, reporter = ReplyTo.from_dict(reply), reporting.current()
    with running(heartbeat_seconds) as (job, _):
        try:
            fleet = process_fleet.fleet()
            host = owner_host(fleet, vm)
            made = fleet.session(host).run(checkpoint_pipeline(vm, name))
            created = str(prop(made[0], "Name")) if made else (name or "?")
            text, ok = f":camera: *checkpoint {vm}*: created checkpoint '{created}' on {host}.", True
        except (HyperVError, ExportError) as err:
            text, ok = f":x: *checkpoint {vm}*: {getattr(err, 'message', str(err))}", False
        reporter.update(key, target, text)
        claim_final(job.connection, job.id)
    return {"ok": ok, "text": text}
