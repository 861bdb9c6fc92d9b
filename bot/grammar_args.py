"""Argument shapes of the backup and export verbs (issue #6): DURATION, `end`, `--at TIME` and the export PATH.

`bot.grammar` calls `check_args` for these verbs instead of its one-token-per-argument check, because their
arguments differ by position: the export PATH is a Windows path (backslashes, spaces) validated with
`jobs.backup.export_progress.validate_export_path`, the other arguments keep the grammar's `_TOKEN` rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from jobs.backup.export_progress import ExportPathError, validate_export_path

BACKUP_VERBS = ("backup-check", "backup-window", "checkpoint", "export")
_DURATION = re.compile(r"^(?:(\d{1,3})h)?(?:(\d{1,4})m(?:in)?)?(?:(\d{1,5})s)?$", re.IGNORECASE)
_CLOCK_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
TokenCheck = Callable[[str, str], None]  # (token, what it is) -> raises CommandError
MAX_WINDOW = timedelta(hours=12)  # jobs.backup.window.WindowConfig.max_duration_s: long pauses force a resync


def parse_duration(text: str) -> timedelta:
    """``30m``, ``2h``, ``1h30m``, ``45s`` -> timedelta; ValueError with a clear sentence otherwise."""
    match = _DURATION.match(text.strip())
    if not match or not any(match.groups()):
        raise ValueError(f"`{text[:30]}` is not a duration such as 30m, 2h or 1h30m")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    length = timedelta(hours=hours, minutes=minutes, seconds=seconds)
    if not timedelta(0) < length <= MAX_WINDOW:
        raise ValueError("a backup window lasts more than 0 and at most 12 h (long pauses force a resync)")
    return length


def parse_at(text: str, now: datetime) -> datetime:
    """``23:00`` (UTC, the next such time) or an ISO 8601 time (naive means UTC); must be in the future."""
    match = _CLOCK_TIME.match(text.strip())
    if match:
        when = now.astimezone(UTC).replace(hour=int(match[1]), minute=int(match[2]), second=0, microsecond=0)
        return when if when > now else when + timedelta(days=1)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"`{text[:40]}` is not a time such as 23:00 (UTC) or 2025-06-01T23:00+02:00") from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    if when <= now:
        raise ValueError(f"--at {text[:40]} is in the past")
    if when - now > timedelta(days=7):
        raise ValueError("--at may be at most 7 days ahead")
    return when


def check_args(verb_name: str, args: list[str], check_token: TokenCheck) -> None:
    """Raise ValueError (a user-facing sentence) when the positional arguments do not fit the verb."""
    count = len(args)
    if verb_name == "backup-check" and count != 1:
        raise ValueError("`backup-check` needs exactly one VM")
    if verb_name == "backup-window":
        if count != 2:
            raise ValueError("`backup-window` needs a VM and a DURATION (like 2h) or `end`")
        if args[1].lower() != "end":
            parse_duration(args[1])
    if verb_name == "checkpoint" and count not in (1, 2):
        raise ValueError("`checkpoint` needs a VM and optionally a checkpoint NAME")
    if verb_name == "export":
        if count != 3:
            raise ValueError("`export` needs a VM, a CHECKPOINT and a PATH")
        try:
            validate_export_path(args[2])
        except ExportPathError as err:
            raise ValueError(f"Export path: {err}") from None
    for position, arg in enumerate(args):
        if "*" in arg:
            raise ValueError(f"`{verb_name}` names one VM or checkpoint exactly (no * wildcards)")
        if verb_name == "export" and position == 2:
            continue
        if verb_name == "backup-window" and position == 1:
            continue
        check_token(arg, "checkpoint name" if position == 1 else "VM")

