"""The replica-health monitor's loop: one instance (a Redis lease), sweeps per host, housekeeping, alert ticks.

`MonitorLease` is a token-checked key with a TTL: a second monitor cannot take it while the first renews it,
and a monitor that died frees it after `ttl_s`. `Monitor.run_once(now)` is one round: it enqueues one sweep job
per host (skipping a host whose previous sweep is still queued or running), runs housekeeping, and runs the
alert timers (`AlertEngine.tick`) so group waits end on time even between sweeps. `now` is passed in, so
tests drive simulated time; the `hvbot monitor` command calls it from a timed loop.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from rq import Queue

from jobs import housekeeping
from jobs.keys import MONITOR_LEASE_KEY, SWEEP_PENDING_KEY
from jobs.monitor.notifications import Notification
from jobs.monitor.state import AlertEngine
from jobs.monitor.sweep import run_host_sweep
from jobs.queue import enqueue

log = logging.getLogger("hvbot.monitor")

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class MonitorAlreadyRunning(RuntimeError):
    """Another monitor holds the lease; the message says which one."""


class MonitorLease:
    def __init__(self, client: redis.Redis, ttl_s: float, key: str = MONITOR_LEASE_KEY) -> None:
        self._r = client
        self._key = key
        self._ttl_ms = max(1000, int(ttl_s * 1000))
        self.holder = f"{socket.gethostname()} pid {os.getpid()} since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"
        self._token = f"{secrets.token_hex(8)} {self.holder}"
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def acquire(self) -> None:
        if self._r.set(self._key, self._token, nx=True, px=self._ttl_ms):
            return
        other = self._r.get(self._key)
        text = other.decode() if isinstance(other, bytes) else str(other or "")
        who = text.split(" ", 1)[1] if " " in text else "unknown"
        raise MonitorAlreadyRunning(
            f"Another hvbot monitor is already running ({who}); only one may run. Stop it first, or wait "
            f"up to {self._ttl_ms // 1000} s if it was killed."
        )

    def renew(self) -> bool:
        """False when the lease was lost (expired and taken by another monitor): stop, do not double-sweep."""
        return bool(self._renew(keys=[self._key], args=[self._token, self._ttl_ms]))

    def release(self) -> None:
        self._release(keys=[self._key], args=[self._token])


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
    last_sweep: float | None = field(default=None)

    def enqueue_sweeps(self, now: datetime) -> list[str]:
        """One sweep job per host whose previous sweep finished; returns the hosts enqueued."""
        ttl = max(int(self.interval_s * 3), self.job_timeout_s)
        rules = self.engine.rules.model_dump(mode="json")
        queued = []
        for host in self.hosts:
            if not self.client.set(SWEEP_PENDING_KEY.format(host), now.isoformat(), nx=True, ex=ttl):
                log.warning("sweep of %s still queued or running: skipped this round", host)
                continue
            enqueue(self.queue, run_host_sweep, {"host": host, "now": now.isoformat(), "rules": rules},
                    timeout=self.job_timeout_s, result_ttl=int(self.interval_s * 2), failure_ttl=3600,
                    description=f"replica sweep of {host}")
            queued.append(host)
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

    def run_forever(self, lease: MonitorLease, stop: threading.Event, tick_s: float = 5.0) -> None:
        """Until `stop` is set or the lease is lost; ticks every `tick_s` so group waits end on time."""
        while not stop.is_set():
            if not lease.renew():
                log.error("monitor lease lost (another monitor took over): stopping")
                return
            try:
                self.run_once(datetime.now(UTC))
            except Exception:  # keep monitoring through a Redis or Slack outage; logged with its traceback
                log.exception("monitor round failed")
            stop.wait(tick_s)
