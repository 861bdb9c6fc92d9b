"""RQ entry point of an approved site/host/plan failover, and the chore that reports runs whose worker died.

``run_recovery`` records the run (``RECOVERY_RUNS_KEY`` and its progress hash), heart-beats like every hvbot
job, runs the plan (``jobs.recovery.execute``) while a refresher redraws the live card whenever the progress
moved (at most every HVBOT_RECOVERY_CARD_INTERVAL_S), and posts the summary once. When its worker is killed,
``sweep_dead_recoveries`` (the serve/worker watcher and housekeeping) marks the VMs that were running as
interrupted with the hosts' view of them, frees the run's VM locks and shows the card with a Resume button.
No RQ Retry is ever set on this job: its steps mutate (rq-and-alerting.md §B8).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import redis
from rq import get_current_job

from jobs import ports
from jobs.backoff import backoff_s
from jobs.failover.gather import Pair, locate
from jobs.failover.plan import Kind
from jobs.failover.run import state_now
from jobs.hyperv import process_fleet
from jobs.keys import ALIVE_KEY, RECOVERY_RUNS_KEY
from jobs.liveness import OWN_DEATH_META, claim_final, clear_message, heartbeat
from jobs.locks import release_owned_by
from jobs.periodic import Periodic
from jobs.recovery.execute import Recovery, run_plan
from jobs.recovery.locks import RunLocks
from jobs.recovery.model import Member, ResolvedPlan
from jobs.recovery.progress import RunProgress, VmState
from jobs.recovery.settings import RecoverySettings

log = logging.getLogger("hvbot.recovery")
DEAD_MESSAGE = ("The worker running this plan stopped unexpectedly (killed or lost). VMs marked interrupted were "
                "in the middle of their steps; the table shows what the hosts report now. Nothing is re-run "
                "automatically: Resume asks for a new approval for the VMs not done.")
MAX_REFRESH_BACKOFF_S = 60.0  # a card at most a minute behind once Redis is back


def run_recovery(approval_id: str, plan: dict[str, Any], kind: str, reply: dict[str, Any],
                 card: dict[str, Any]) -> dict[str, Any]:
    """Run an approved recovery plan (``plan``: ``ResolvedPlan.to_dict()``) once; returns its summary."""
    job = get_current_job()
    assert job is not None, "run_recovery runs inside an RQ job"
    job.meta[OWN_DEATH_META] = True  # the generic abandoned-job report would say "nothing was changed": wrong here
    job.save_meta()
    conn, settings = job.connection, RecoverySettings()
    resolved, progress = ResolvedPlan.from_dict(plan), RunProgress(job.connection, approval_id)
    progress.create(resolved, {"kind": Kind(kind).value, "card": card, "reply": reply, "job_id": job.id,
                               "scope": {"kind": str(resolved.scope.kind), "value": resolved.scope.value},
                               "started": time.time()})
    conn.hset(RECOVERY_RUNS_KEY, approval_id, json.dumps({"job_id": job.id, "started": time.time()}))
    reporter = ports.current_recovery()
    try:
        with (heartbeat(conn, job.id, settings.heartbeat_seconds),
              RunLocks(conn, approval_id, settings.lock_ttl_ms) as locks,
              refreshing_card(progress, card, reporter, settings.card_interval_s)):
            rec = Recovery(process_fleet.fleet(), resolved, Kind(kind), progress, locks,
                           per_host=settings.per_host_parallel, heartbeat_poll_s=settings.heartbeat_poll_s)
            summary = run_plan(rec)
    except Exception as exc:
        _mark_interrupted(progress)  # a bug stopped the run: say where every VM stands before re-raising
        progress.set_meta(status="failed", error=clear_message(exc), ended=time.time())
        if claim_final(conn, job.id):
            reporter.finished(card, progress.snapshot())
        raise
    else:
        progress.set_meta(status="finished", summary=summary, ended=time.time())
        if claim_final(conn, job.id):
            reporter.finished(card, progress.snapshot())
        return summary
    finally:
        conn.hdel(RECOVERY_RUNS_KEY, approval_id)


class CardRefresher(Periodic):
    """One round at a time: redraw the card if the progress moved; while Redis or Slack fail, back off and log
    the traceback once per outage, not every interval (jobs/backoff.py). The first round draws at once: the card
    turns into the table as soon as the run starts."""

    def __init__(self, progress: RunProgress, card: dict[str, Any], reporter: ports.RecoveryReporter,
                 interval_s: float) -> None:
        self.progress, self.card, self.reporter, self.interval_s = progress, card, reporter, interval_s
        self.shown, self.failures = 0, 0
        super().__init__("hvbot-recovery-card", 0.0, join_s=interval_s + 30)

    def round(self) -> float:
        """Redraw if needed; returns how long to wait before the next round."""
        try:
            version = self.progress.version()
            if version != self.shown:
                self.reporter.progress(self.card, self.progress.snapshot())
                self.shown = version
        except Exception as exc:
            self.failures += 1
            if self.failures == 1:
                log.warning("recovery card refresh failed; retrying with backoff", exc_info=True)
            else:
                log.warning("recovery card refresh failed %d times in a row: %s", self.failures, clear_message(exc))
            return backoff_s(self.failures, self.interval_s, max(self.interval_s, MAX_REFRESH_BACKOFF_S))
        if self.failures:
            log.info("recovery card refresh works again after %d failed rounds", self.failures)
            self.failures = 0
        return self.interval_s


@contextmanager
def refreshing_card(progress: RunProgress, card: dict[str, Any], reporter: ports.RecoveryReporter,
                    interval_s: float) -> Iterator[None]:
    """Redraw the card when the progress moved, at most every ``interval_s`` (one writer: no write storms)."""
    refresher = CardRefresher(progress, card, reporter, interval_s).start()
    try:
        yield
    finally:
        refresher.stop()


def sweep_dead_recoveries(connection: redis.Redis, now: datetime, grace_seconds: float = 10.0,
                          reporter: ports.RecoveryReporter | None = None) -> int:
    """Housekeeping chore: a run whose heartbeat stopped is shown once, with every VM's state, and can be resumed."""
    reporter = reporter or ports.current_recovery()
    if isinstance(reporter, ports.NoRecoveryReporter):
        return 0  # nobody to tell: leave the run to a process that can show it (claiming would silence it)
    reported = 0
    for raw_id, raw in connection.hgetall(RECOVERY_RUNS_KEY).items():
        run_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        entry = json.loads(raw)
        if connection.exists(ALIVE_KEY.format(entry["job_id"])) or now.timestamp() - entry["started"] < grace_seconds:
            continue
        progress = RunProgress(connection, run_id)
        if claim_final(connection, entry["job_id"]) and progress.exists():
            _mark_interrupted(progress)
            progress.set_meta(status="abandoned", error=DEAD_MESSAGE, ended=now.timestamp())
            snapshot = progress.snapshot()
            reporter.finished(snapshot["card"], snapshot)
            reported += 1
        if progress.exists():
            for member in progress.plan().vms():
                release_owned_by(connection, member.vm, run_id)
        connection.hdel(RECOVERY_RUNS_KEY, run_id)
    return reported


def _mark_interrupted(progress: RunProgress) -> None:
    """VMs caught mid-steps: interrupted, with what their hosts say now (read once, never acted on)."""
    for member in progress.plan().vms():
        vm = progress.vm(member)
        if vm.state not in (VmState.RUNNING, VmState.HEARTBEAT):
            continue
        progress.update(member, state=VmState.INTERRUPTED, ended=time.time(), state_now=_hosts_view(member))


def _hosts_view(member: Member) -> str:
    try:
        fleet = process_fleet.fleet()
        pair = (Pair(member.primary_host, member.replica_host) if member.primary_host
                else locate(fleet, member.vm, member.replica_host))
        sides = state_now(fleet, member.vm, pair)["sides"]
    except Exception as exc:  # noqa: BLE001 - report the death even when the hosts cannot be read
        return f"could not be read: {str(exc)[:160]}"
    return "; ".join(f"{s['host']}: {'unreachable' if not s['reachable'] else _side(s)}" for s in sides)


def _side(side: dict[str, Any]) -> str:
    return f"VM {side['vm_state'] or 'absent'}, replication {side['mode'] or '-'} {side['state'] or ''}".strip()


def remaining_plan(connection: redis.Redis, run_id: str) -> ResolvedPlan | None:
    """The VMs of a run that are not done, as a plan to preview and approve again (None: the run is gone)."""
    progress = RunProgress(connection, run_id)
    if not progress.exists():
        return None
    left = progress.remaining()
    return left if left.groups else None
