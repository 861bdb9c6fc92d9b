"""The previous release's dotted path `jobs.sweep` of the replica-health sweep job.

RQ stores a job's function and callbacks by dotted path, so this module only keeps jobs queued or scheduled
by that release runnable; remove it once those queues have drained.
"""

from __future__ import annotations

from jobs.monitor.sweep import run_host_sweep

__all__ = ["run_host_sweep"]
