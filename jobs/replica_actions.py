"""The previous release's dotted path `jobs.replica_actions` of the Resume / Resync job of a replica alert.

RQ stores a job's function and callbacks by dotted path, so this module only keeps jobs queued or scheduled
by that release runnable; remove it once those queues have drained.
"""

from __future__ import annotations

from jobs.monitor.actions import run_resume

__all__ = ["run_resume"]
