"""The previous release's dotted path `jobs.backup_jobs` of the backup jobs (check, window, checkpoint, alert).

RQ stores a job's function and callbacks by dotted path, so this module only keeps jobs queued or scheduled
by that release runnable; remove it once those queues have drained.
"""

from __future__ import annotations

from jobs.backup.tasks import run_alert_action, run_check, run_checkpoint, run_window_end, run_window_start

__all__ = ["run_alert_action", "run_check", "run_checkpoint", "run_window_end", "run_window_start"]
