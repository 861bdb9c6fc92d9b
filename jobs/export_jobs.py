"""The previous release's dotted path `jobs.export_jobs` of the checkpoint export job.

RQ stores a job's function and callbacks by dotted path, so this module only keeps jobs queued or scheduled
by that release runnable; remove it once those queues have drained.
"""

from __future__ import annotations

from jobs.backup.export_tasks import run_export

__all__ = ["run_export"]
