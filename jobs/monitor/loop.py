"""The replica-health monitor's loop: one instance (a Redis lease), sweep jobs of several hosts each, housekeeping,
alert ticks.

`Monitor.run_once(now)` is one round: it enqueues sweep jobs of `hosts_per_job` hosts each (skipping a host whose
previous sweep is still queued or running), runs housekeeping, and runs the alert timers (`AlertEngine.tick`) so
group waits end on time even between sweeps. `now` is passed in, so tests drive simulated time; `run_forever` calls it
from a timed loop that outlives Redis: a Redis error ends the round, not the monitor (it waits with backoff and tries
again), and the first round after an outage, after a Redis restart or after the lease had to be taken back sweeps at
once, so alert state lost with Redis is rebuilt from the hosts. Every round that completes writes the heartbeat
(`jobs.monitor.heartbeat`). The lease lives in `jobs.monitor.lease`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from rq import Queue

from jobs import housekeeping
from jobs.keys import SWEEP_PENDING_KEY
from jobs.monitor import heartbeat
from jobs.backoff import backoff_s
from jobs.monitor.lease import LeaseState, MonitorAlreadyRunning, MonitorLease
from jobs.monitor.notifications import Notification
from jobs.monitor.state import AlertEngine
from jobs.monitor.sweep import run_hosts_sweep
from jobs.queue import enqueue

log = logging.getLogger("hvbot.monitor")

__all__ = ["Monitor", "MonitorAlreadyRunning", "MonitorLease", "LeaseLost", "backoff_s"]


class LeaseLost(RuntimeError):
    """Another monitor holds the lease now: this one stops rather than sweep twice."""


Deliver = Callable[[Sequence[Notification], AlertEngine], int]


@dataclass
class Monitor:
    client: redis.Redis
    queue: Queue
    hosts: Sequence[str]
    engine: AlertEngine
    deliver: Deliver | None
    interval_s: float = 60.0
    job_timeout_s: int = 120
    # Hosts per sweep job: a job asks its hosts at once, so a few jobs per worker overlap the network waits that
    # one job per host spent in turn; enough jobs remain to spread a sweep over every worker.
    hosts_per_job: int = 25
    last_sweep: float | None = field(default=None)
    _run_id: str | None = field(default=None, repr=False)  # Redis server run id seen last round; "" = unknown

    def enqueue_sweeps(self, now: datetime) -> list[str]:
        """Sweep jobs of `hosts_per_job` hosts each, for every host whose previous sweep finished; returns the
        hosts enqueued."""
        ttl = max(int(self.interval_s * 3), self.job_timeout_s)
        marks = self.client.pipeline(transaction=False)
        for host in self.hosts:
            marks.set(SWEEP_PENDING_KEY.format(host), now.isoformat(), nx=True, ex=ttl)
        queued = []
        for host, marked in zip(self.hosts, marks.execute()):
            if not marked:
                log.warning("sweep of %s still queued or running: skipped this round", host)
                continue
            queued.append(host)
        rules = self.engine.rules.model_dump(mode="json")
        size = max(1, self.hosts_per_job)
        for first in range(0, len(queued), size):
            batch = queued[first:first + size]
            enqueue(self.queue, run_hosts_sweep, {"hosts": batch, "now": now.isoformat(), "rules": rules},
                    timeout=self.job_timeout_s, result_ttl=int(self.interval_s * 2), failure_ttl=3600,
                    description=f"replica sweep of {_named(batch)}")
        self.last_sweep = now.timestamp()
        return queued

    def tick(self, now: datetime) -> int:
        notes = self.engine.tick(now)
        return self.deliver(notes, self.engine) if notes and self.deliver else 0

    def run_once(self, now: datetime) -> dict[str, Any]:
        """A sweep if one is due, housekeeping with it, and the alert timers every call."""
        out: dict[str, Any] = {}
        if self.last_sweep is None or now.timestamp() - self.last_sweep >= self.interval_s:
            out["swept"] = self.enqueue_sweeps(now)
            out["housekeeping"] = housekeeping.run_housekeeping(self.client, now)
        out["writes"] = self.tick(now)
        return out

    def run_forever(self, lease: MonitorLease, stop: threading.Event, tick_s: float = 5.0,
                    max_backoff_s: float = 30.0) -> None:
        """Until `stop` is set; raises LeaseLost when another monitor took the lease. Never ends on a Redis error."""
        failures = 0
        while not stop.is_set():
            try:
                self._round(lease, tick_s)
            except redis.RedisError as exc:
                failures += 1
                self.last_sweep = None  # rounds were lost: sweep as soon as Redis answers again
                delay = backoff_s(failures, tick_s, max(max_backoff_s, tick_s))
                log.warning("Redis unreachable (%s: %s); monitor round %d in a row failed, next try in %.1f s",
                            type(exc).__name__, exc, failures, delay)
                stop.wait(delay)
                continue
            except LeaseLost:
                raise
            except Exception:  # a Slack outage or a bug in one round must not end monitoring
                log.exception("monitor round failed")
            else:
                if failures:
                    log.warning("Redis answers again after %d failed round(s): monitoring resumed", failures)
                failures = 0
            stop.wait(tick_s)

    def _round(self, lease: MonitorLease, tick_s: float) -> None:
        state = lease.hold()
        if state is LeaseState.TAKEN:
            raise LeaseLost(f"monitor lease taken by another monitor ({lease.other_holder()}): stopping")
        if state is LeaseState.RETAKEN:
            log.warning("monitor lease was missing (Redis lost its data, or it expired during an outage): "
                        "taken back; sweeping now to rebuild alert state from the hosts")
            self.last_sweep = None
        if self._redis_restarted():
            log.warning("Redis restarted since the last round: sweeping now")
            self.last_sweep = None
        now = datetime.now(UTC)
        self.run_once(now)
        heartbeat.write(self.client, heartbeat.Heartbeat(
            at=now.timestamp(), swept_at=self.last_sweep or now.timestamp(), interval_s=self.interval_s,
            tick_s=tick_s, holder=lease.holder, hosts=len(self.hosts)))

    def _redis_restarted(self) -> bool:
        """True when the server's run id changed since the last round (a restart, with or without its data)."""
        if self._run_id == "":
            return False  # INFO is refused on this server (some managed Redis): rely on the lease and errors
        try:
            run_id = str(self.client.info("server").get("run_id", ""))
        except redis.ResponseError:
            self._run_id = ""
            return False
        restarted = self._run_id is not None and run_id != self._run_id
        self._run_id = run_id
        return restarted


def _named(hosts: Sequence[str]) -> str:
    return hosts[0] if len(hosts) == 1 else f"{len(hosts)} hosts ({hosts[0]} … {hosts[-1]})"
