"""Housekeeping: the small, idempotent chores that keep hvbot's promises when processes die.

`hvbot monitor` runs it every sweep and every worker runs it once at start, so a chore is never more than one
sweep late even while the monitor is down. Each chore must be safe to run from several processes at once
(leases / compare-and-set in Redis) and must not raise for one bad item. Chores are named "module:function" and
imported when run, so this module stays free of the features' imports.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from datetime import datetime

import redis

log = logging.getLogger("hvbot.housekeeping")

Chore = Callable[[redis.Redis, datetime], object]

# name -> "module:function(connection, now)". Features add one line each.
CHORES: dict[str, str] = {
    "abandoned_jobs": "jobs.monitor.loop:abandoned_jobs_chore",
    "backup_windows": "jobs.backup.operations:housekeeping_chore",  # resume overdue backup windows (issue #6)
    "failover_runs": "jobs.failover.tasks:sweep_dead_failovers",  # report failovers of dead workers (issue #5)
    "approval_expiry": "bot.listeners.failover:expire_chore",  # expire overdue failover approvals (issue #5)
}


def resolve(target: str) -> Chore:
    module_name, attr = target.split(":")
    chore: Chore = getattr(importlib.import_module(module_name), attr)
    return chore


def run_housekeeping(connection: redis.Redis, now: datetime) -> dict[str, str]:
    """Run every chore once; one chore failing never stops the others. Returns chore name -> outcome text."""
    outcomes: dict[str, str] = {}
    for name, target in CHORES.items():
        try:
            outcomes[name] = f"ok: {resolve(target)(connection, now)}"
        except Exception as exc:  # a chore's bug must not starve the other chores
            log.exception("housekeeping chore %s failed", name)
            outcomes[name] = f"failed: {type(exc).__name__}"
    return outcomes
