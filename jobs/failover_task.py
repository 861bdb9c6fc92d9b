"""The previous release's dotted path `jobs.failover_task` of the failover preview and run jobs.

RQ stores a job's function and callbacks by dotted path, so this module only keeps jobs queued or scheduled
by that release runnable; remove it once those queues have drained.
"""

from __future__ import annotations

from jobs.failover.tasks import run_failover, run_preview

__all__ = ["run_failover", "run_preview"]
