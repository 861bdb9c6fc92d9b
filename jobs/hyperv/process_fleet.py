"""The Fleet of the current process: host sessions opened once per process and reused by its jobs."""

from __future__ import annotations

import logging
import os
import threading

from jobs.hyperv.fleet import Fleet
from jobs.hyperv.hosts import load_inventory
from jobs.hyperv.settings import JobSettings

log = logging.getLogger("hvbot.jobs")

_fleet_cache: dict[int, Fleet] = {}
_fleet_lock = threading.Lock()


def fleet() -> Fleet:
    """One Fleet (host sessions) per process: a forked work horse must not reuse its parent's sockets."""
    pid = os.getpid()
    with _fleet_lock:
        if pid not in _fleet_cache:
            settings = JobSettings()
            if settings.inventory is None:
                raise RuntimeError("No inventory configured: set HVBOT_INVENTORY to the inventory YAML file.")
            _fleet_cache.clear()
            _fleet_cache[pid] = Fleet(load_inventory(settings.inventory), settings)
        return _fleet_cache[pid]


def warm_fleet_in_background() -> threading.Thread | None:
    """Open this process's host sessions in a daemon thread (simple workers keep them between jobs).

    Why: RQ hands a host's next job to whichever worker is free, so without this each worker pays the
    pool-open exchanges once per host on its own first visit, sweeps after a restart included.
    Failures only cost the first call's speed: they are logged, the call opens the session itself.
    """
    if JobSettings().inventory is None:
        return None

    def warm() -> None:
        try:
            result = fleet().warm()
        except Exception:  # noqa: BLE001 - an optimisation: never take the worker down
            log.exception("opening host sessions ahead of jobs failed")
            return
        log.info("host sessions opened ahead of jobs: %d ok, %d failed (%s)", len(result.results),
                 len(result.errors), ", ".join(result.errors) or "none")

    thread = threading.Thread(target=warm, name="hvbot-warm-sessions", daemon=True)
    thread.start()
    return thread
