"""RQ entry point of checkpoint export from chat: one message with a text progress bar, updated at
most every HVBOT_BACKUP_EXPORT_UPDATE_S seconds, a Cancel button, and the duration and path at the end.

Cancel is cooperative: the button sets `EXPORT_CANCEL_KEY` in Redis; the export's progress callback reads it
after every poll and stops the pipeline (jobs.backup.export, HostSession.run_watched). The job's RQ timeout is the
configured export maximum plus a margin, so the export's own deadline (a clear message) comes first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from jobs import ports as reporting
from jobs.backup.export import ExportError, export_checkpoint
from jobs.backup.export_progress import ExportPathError, ReplicaRecoveryPointError
from jobs.backup.settings import BackupSettings
from jobs.backup.tasks import running
from jobs.hyperv import process_fleet
from jobs.keys import EXPORT_CANCEL_KEY
from jobs.liveness import claim_final
from jobs.ports import ReplyTo

TIMEOUT_MARGIN_S = 120
clock: Callable[[], float] = time.monotonic  # the pacing clock (tests read the lab's frozen clock instead)


def job_timeout(settings: BackupSettings) -> int:
    return settings.export_timeout_s + TIMEOUT_MARGIN_S


def cancel_actions(key: str) -> list[dict[str, str]]:
    return [{"action": "export_cancel", "label": "Cancel export", "value": key, "style": "danger"}]


def run_export(vm: str, checkpoint: str, path: str, key: str, reply: dict[str, Any],
               heartbeat_seconds: float = 10.0) -> dict[str, Any]:
    target, reporter, settings = ReplyTo.from_dict(reply), reporting.current(), BackupSettings()
    title = f"*export {vm} / {checkpoint}* to `{path}`"
    with running(heartbeat_seconds) as (job, _):
        connection = job.connection
        reporter.update(key, target, f":package: {title}: starting …", cancel_actions(key))

        def update(line: str) -> None:
            reporter.update(key, target, f":package: {title}\n`{line}`", cancel_actions(key))

        try:
            outcome = export_checkpoint(
                process_fleet.fleet(), vm, checkpoint, path, update=update,
                cancelled=lambda: bool(connection.exists(EXPORT_CANCEL_KEY.format(key))),
                update_s=settings.export_update_s, deadline_s=settings.export_timeout_s, clock=clock)
        except (ExportError, ExportPathError, ReplicaRecoveryPointError) as err:
            text, result = f":x: {title} failed: {err}", {"ok": False, "error": str(err)}
        else:
            who = connection.get(EXPORT_CANCEL_KEY.format(key))
            by = f" by <@{who.decode()}>" if outcome.cancelled and who else ""
            icon = ":no_entry_sign:" if outcome.cancelled else ":white_check_mark:"
            text = f"{icon} {outcome.summary().replace(' cancelled', ' cancelled' + by, 1)}"
            result = {"ok": not outcome.cancelled, "cancelled": outcome.cancelled, "seconds": outcome.seconds,
                      "path": outcome.path, "host": outcome.host}
        if claim_final(connection, job.id):
            reporter.update(key, target, text)
    return result
