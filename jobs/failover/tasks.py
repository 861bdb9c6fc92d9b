"""RQ entry points of failover (preview, approved run) and its housekeeping chores (dead runs, expired approvals).

The run holds the VM's lock (renewed while it runs), heart-beats like every hvbot job, and is registered in
``FAILOVER_RUNS_KEY`` so that when its worker is SIGKILLed the chore reports the failure with the VM's real
state and frees the lock. No RQ Retry is ever set on these jobs: their steps mutate (rq-and-alerting.md §B8).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import redis
from rq import get_current_job

from jobs import ports as reporting
from jobs.failover.approvals import expire_due
from jobs.failover.gather import FailoverLookupError, Pair
from jobs.failover.plan import Kind
from jobs.failover.run import Run, execute, preview, state_now
from jobs.hyperv import process_fleet
from jobs.hyperv.errors import HyperVError
from jobs.keys import ALIVE_KEY, FAILOVER_PREVIEW_KEY, FAILOVER_RUNS_KEY
from jobs.liveness import claim_final, heartbeat
from jobs.locks import VmLock, release_owned_by

log = logging.getLogger("hvbot.failover")
LOCK_TTL_MS = 30_000
DEAD_MESSAGE = ("The worker running this failover stopped unexpectedly (killed or lost) in the middle of it. "
                "Check the state below before doing anything else; no step is re-run automatically.")


@contextmanager
def _renewing(lock: VmLock, every_s: float) -> Iterator[threading.Event]:
    """Renew the lock in the background; the event is set when a renewal failed (the lock was lost)."""
    stop, lost = threading.Event(), threading.Event()

    def loop() -> None:
        while not stop.wait(every_s):
            if not lock.renew():
                lost.set()
                return

    thread = threading.Thread(target=loop, name="hvbot-vm-lock", daemon=True)
    thread.start()
    try:
        yield lost
    finally:
        stop.set()
        thread.join(timeout=every_s + 1)


def run_failover(approval_id: str, kind: str, vm: str, primary: str, replica: str, point: str | None,
                 signature: list[list[Any]], card: dict[str, Any], heartbeat_seconds: float = 5.0,
                 lock_ttl_ms: int = LOCK_TTL_MS) -> dict[str, Any]:
    job = get_current_job()
    assert job is not None, "run_failover runs inside an RQ job"
    conn, steps = job.connection, reporting.current_steps()
    lock = VmLock(conn, vm, ttl_ms=lock_ttl_ms)
    if not lock.acquire(approval_id):
        outcome = {"ok": False, "kind": kind, "vm": vm, "steps": [], "sides": [], "next_actions": [],
                   "error": f"another operation on {vm} is running ({lock.holder()}); nothing was done"}
        if claim_final(conn, job.id):
            steps.outcome(card, outcome)
        return outcome
    record = {"job_id": job.id, "vm": vm, "primary": primary, "replica": replica, "card": card,
              "started": time.time()}
    conn.hset(FAILOVER_RUNS_KEY, approval_id, json.dumps(record))
    try:
        with heartbeat(conn, job.id, heartbeat_seconds), _renewing(lock, lock_ttl_ms / 3000) as lost:
            run = Run(process_fleet.fleet(), Kind(kind), vm, Pair(primary, replica), point, signature,
                      lambda step: steps.step(card, step), keepalive=lambda: not lost.is_set())
            outcome = execute(run)
        if claim_final(conn, job.id):
            steps.outcome(card, outcome)
        return outcome
    finally:
        conn.hdel(FAILOVER_RUNS_KEY, approval_id)
        lock.release()


def sweep_dead_failovers(connection: redis.Redis, now: datetime, grace_seconds: float = 10.0,
                         steps: reporting.StepReporter | None = None) -> int:
    """Housekeeping chore: a run whose heartbeat stopped is reported once with the VM's real state.

    ``steps`` is the card reporter to use (the abandoned-job watcher of serve/worker passes its own); by default
    the process's installed one."""
    reported = 0
    for raw_id, raw in connection.hgetall(FAILOVER_RUNS_KEY).items():
        approval_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        run = json.loads(raw)
        if connection.exists(ALIVE_KEY.format(run["job_id"])) or now.timestamp() - run["started"] < grace_seconds:
            continue
        if claim_final(connection, run["job_id"]):
            try:
                state = state_now(process_fleet.fleet(), run["vm"], Pair(run["primary"], run["replica"]))
            except Exception as exc:  # noqa: BLE001 - report the death even when the hosts cannot be read
                state = {"sides": [], "next_actions": [], "state_error": str(exc)[:200]}
            outcome = {"ok": False, "kind": run["card"].get("kind", ""), "vm": run["vm"], "steps": [],
                       "error": DEAD_MESSAGE, "abandoned": True} | state
            (steps or reporting.current_steps()).outcome(run["card"], outcome)
            reported += 1
        release_owned_by(connection, run["vm"], approval_id)
        connection.hdel(FAILOVER_RUNS_KEY, approval_id)
    return reported


def expire_approvals(connection: redis.Redis, now: datetime, steps: reporting.StepReporter | None = None) -> int:
    """Housekeeping chore: expire overdue approval requests and mark their cards (through the step reporter)."""
    expired = expire_due(connection, now.timestamp())
    for approval in expired:
        card = {"approval_id": approval.id, "channel": approval.channel, "ts": approval.message_ts,
                "kind": approval.params.get("kind", ""), "vm": approval.params.get("vm", ""),
                "requester": approval.requester}
        (steps or reporting.current_steps()).expired(card)
    return len(expired)


PREVIEW_TTL_S = 900


def run_preview(preview_id: str, kind: str, vm: str, point: str | None, host: str | None,
                card: dict[str, Any]) -> dict[str, Any]:
    """Read the fleet, build the plan, keep it for the Request button, and show it to the requester."""
    job = get_current_job()
    assert job is not None
    try:
        data = preview(process_fleet.fleet(), kind, vm, point, host)
    except (FailoverLookupError, HyperVError) as exc:
        data = {"kind": kind, "vm": vm, "point": point, "error": str(exc)}
    job.connection.set(FAILOVER_PREVIEW_KEY.format(preview_id), json.dumps(data), ex=PREVIEW_TTL_S)
    reporting.current_steps().preview(card, preview_id, data)
    return data
