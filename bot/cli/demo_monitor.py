"""The demo's own replica-health monitor: the same `Monitor` as `hvbot monitor`, in a thread, sweeping often.

It takes the monitor lease like any monitor; when another monitor already holds it on this Redis (a real
deployment's, or a second demo), or the Redis cannot hold it (fakeredis runs no Lua), the demo runs without one
and says so rather than sweep twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from rq.job import Job

from bot.cli.monitor import build_monitor
from bot.settings import Settings
from jobs.keys import SWEEP_PENDING_KEY
from jobs.monitor.loop import LeaseLost, Monitor, MonitorAlreadyRunning, MonitorLease
from jobs.monitor.sweep import run_host_sweep

log = logging.getLogger("hvbot.demo")
THREAD_NAME = "hvbot-demo-monitor"
TICK_S = 1.0  # alert timers (group waits) run this often
FIRST_SWEEP_S = 30.0  # at most this long for the first sweep before the console starts (the lab answers in ms)


def demo_monitor_settings(settings: Settings) -> Settings:
    """The demo's short sweep interval and group wait (below `hvbot monitor`'s floor: the lab answers at once)."""
    return settings.model_copy(update={"sweep_interval_seconds": settings.demo_sweep_interval_seconds,
                                       "alert_group_wait_seconds": settings.demo_alert_group_wait_seconds})


def is_monitor_job(job: Job) -> bool:
    """Work the monitor starts on its own (sweeps, and what its chores enqueue): nobody at the console waits for it."""
    return job.func_name.endswith(f".{run_host_sweep.__name__}") or threading.current_thread().name == THREAD_NAME


def first_sweep_done(monitor: Monitor, connection: redis.Redis, hosts: list[str]) -> bool:
    """Wait until the first sweep of every host has ended, so `/hyperv replication` answers from the first line."""
    deadline = time.monotonic() + FIRST_SWEEP_S
    while time.monotonic() < deadline:
        if monitor.last_sweep is not None and not connection.exists(*[SWEEP_PENDING_KEY.format(h) for h in hosts]):
            return True
        time.sleep(0.05)
    return False


@contextmanager
def demo_monitor(settings: Settings, connection: redis.Redis, hosts: list[str]) -> Iterator[tuple[bool, str]]:
    """Run the monitor until the block ends; yields whether it runs, and a sentence for the terminal saying so."""
    lease = MonitorLease(connection, ttl_s=30.0)
    try:
        lease.acquire()
    except MonitorAlreadyRunning:
        yield False, "Monitor: another hvbot monitor holds the lease on this Redis; the demo runs without its own"
        return
    except redis.ResponseError:  # fakeredis without Lua: the lease is a script
        yield False, "Monitor: not started, this Redis cannot run scripts (install redis-server to see alerts)"
        return
    stop = threading.Event()
    monitor = build_monitor(settings, connection, hosts)

    def run() -> None:
        try:
            monitor.run_forever(lease, stop, tick_s=TICK_S)
        except LeaseLost as exc:
            log.error("demo monitor stopped: %s", exc)

    thread = threading.Thread(target=run, name=THREAD_NAME, daemon=True)
    thread.start()
    first = "" if first_sweep_done(monitor, connection, hosts) else " (the first sweep is still running)"
    try:
        yield True, (f"Monitor: sweeps every {settings.sweep_interval_seconds:g} s; alerts go to "
               f"{settings.alert_critical_channel} (Critical) and {settings.alert_warning_channel} (Warning)"
               f"{first}")
    finally:
        stop.set()
        thread.join(10)
        try:
            lease.release()
        except redis.RedisError:
            pass  # the lease expires by itself
