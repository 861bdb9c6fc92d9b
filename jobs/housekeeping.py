"""Housekeeping: the small, idempotent chores that keep hvbot's promises when processes die.

`hvbot monitor` runs it every sweep and every worker runs it once at start, so a chore is never more than one
sweep late even while the monitor is down. Each chore must be safe to run from several processes at once
(leases / compare-and-set in Redis) and must not raise for one bad item. A chore that tells users does so
through jobs.ports, so the process installs its ports before running housekeeping.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import redis

from jobs import liveness
from jobs.backup import operations as backup
from jobs.failover import tasks as failover
from jobs.recovery import drill_chores, drill_tasks
from jobs.recovery import tasks as recovery

log = logging.getLogger("hvbot.housekeeping")

Chore = Callable[[redis.Redis, datetime], object]

# name -> chore(connection, now). Features add one line each.
CHORES: dict[str, Chore] = {
    "abandoned_jobs": liveness.abandoned_jobs_chore,  # report jobs whose worker died
    "backup_windows": backup.housekeeping_chore,  # resume overdue backup windows
    "failover_runs": failover.sweep_dead_failovers,  # report failovers of dead workers, free their VM locks
    "recovery_runs": recovery.sweep_dead_recoveries,  # show plans of dead workers (states, Resume), free locks
    "approval_expiry": failover.expire_approvals,  # expire overdue failover approvals, mark their cards
    "dead_drills": drill_tasks.sweep_dead_drills,  # remove test VMs of drills whose worker died, report them
    "scheduled_drills": drill_chores.start_due_drills,  # start (or announce) scheduled drills that are due
    "untested_plans": drill_chores.untested_plans,  # notice plans not drilled within their period
}


def run_housekeeping(connection: redis.Redis, now: datetime) -> dict[str, str]:
    """Run every chore once; one chore failing never stops the others. Returns chore name -> outcome text."""
    outcomes: dict[str, str] = {}
    for name, chore in CHORES.items():
        try:
            outcomes[name] = f"ok: {chore(connection, now)}"
        except Exception as exc:  # a chore's bug must not starve the other chores
            log.exception("housekeeping chore %s failed", name)
            outcomes[name] = f"failed: {type(exc).__name__}"
    return outcomes
