"""The previous release's dotted path `jobs.teaming_set` of the AllowTeaming change job.

RQ stores a job's function and callbacks by dotted path, so this module only keeps jobs queued or scheduled
by that release runnable; remove it once those queues have drained.
"""

from __future__ import annotations

from jobs.teaming import run_set_teaming

__all__ = ["run_set_teaming"]
