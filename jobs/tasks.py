"""The previous release's dotted path `jobs.tasks` of the lookup job and the failure / stopped callbacks.

RQ stores a job's function and callbacks by dotted path, so this module only keeps jobs queued or scheduled
by that release runnable; remove it once those queues have drained.
"""

from __future__ import annotations

from jobs.inventory.tasks import run_lookup
from jobs.liveness import on_job_failed, on_job_stopped

__all__ = ["on_job_failed", "on_job_stopped", "run_lookup"]
