"""The on-call alert when a backup window's resume keeps failing (raised once per window by WindowStore).

The alert is stored in Redis (`BACKUP_ALERT_KEY`, what the Retry / Resynchronize buttons act on) and
reported through the installed reporter to the on-call channel, so a worker needs no Slack knowledge.
"""

from __future__ import annotations

import json
import logging
import time

import redis

from jobs import ports as reporting
from jobs.backup.settings import BackupSettings
from jobs.keys import BACKUP_ALERT_KEY
from jobs.ports import ReplyTo

log = logging.getLogger("hvbot.backup")

ALERT_TTL = 7 * 86400


def alert_text(vm: str, error: str, failures: int) -> str:
    return (f"Backup window of {vm}: replication could not be resumed after {failures} attempts "
            f"(last error: {error}). hvbot keeps retrying with backoff; replication stays paused until it "
            f"succeeds. Retry now, or resynchronize if the VM needs it (Resume-VMReplication -Resynchronize).")


def post_resume_alert(connection: redis.Redis, settings: BackupSettings, vm: str, error: str, failures: int) -> str:
    """Record the alert and report it; returns the alert id (also the message key of the report)."""
    alert_id = f"bkalert-{vm}-{int(time.time())}"
    text = alert_text(vm, error, failures)
    connection.set(BACKUP_ALERT_KEY.format(vm), json.dumps({"id": alert_id, "vm": vm, "error": error,
                                                     "failures": failures, "text": text}), ex=ALERT_TTL)
    if not settings.oncall_channel:
        log.error("no on-call channel configured (HVBOT_BACKUP_ONCALL_CHANNEL): %s", text)
        return alert_id
    reply = ReplyTo(channel=settings.oncall_channel, user="", command=f"backup-window {vm} resume", here=True)
    reporter = reporting.current()
    show_alert = getattr(reporter, "backup_alert", None)  # the Slack reporter adds Retry / Resynchronize buttons
    if show_alert is not None:
        show_alert(alert_id, reply, vm, text)
    else:
        reporter.failed(alert_id, reply, text)
    return alert_id


def load_alert(connection: redis.Redis, vm: str) -> dict[str, object] | None:
    raw = connection.get(BACKUP_ALERT_KEY.format(vm))
    return json.loads(raw) if raw else None
