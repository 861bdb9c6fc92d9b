"""Checkpoint export (Export-VMSnapshot): what to check before it runs and how to show its progress.

- Progress: Hyper-V cmdlets emit progress records while the WMI task runs (activity = task caption,
  `PercentComplete` = n, type Completed at the end) and pypsrp collects them in `ps.streams.progress`
  (hyperv.md §1.2). `latest_progress()` reads the newest one; `render_progress()` draws a text bar.
- Pacing: `ProgressThrottle` lets through at most one Slack update every `min_interval_s` seconds, always the
  first and always the final one (Slack rate limits, rq-and-alerting.md C4). Time is passed in.
- Target path: resolved on the Hyper-V host (§1.2), so it must be an absolute local Windows path
  (``D:\\Exports``) or a UNC path (``\\\\server\\share\\dir``). The naming rules (reserved characters, device
  names, no trailing space or dot) are Microsoft's "Naming Files, Paths, and Namespaces"; no hvbot reference
  page covers them. PowerShell wildcard brackets are refused too, since whether `-Path` expands them is not
  documented for Export-VMSnapshot.
- Replica recovery points (SnapshotType Replica / AppConsistentReplica / SyncedReplica, §3.5) are refused:
  since WS2012 R2 they are undo logs (.HRU) that VM export/import does not carry [BLOG-RH] (§1.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PureWindowsPath
from typing import Any

# -- progress ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    activity: str
    percent: int | None  # None: the record carried no percentage (PowerShell uses -1)
    completed: bool = False


def _field(record: Any, name: str) -> Any:
    return record.get(name) if isinstance(record, dict) else getattr(record, name, None)


def _is_completed(progress_type: Any) -> bool:
    # pypsrp gives a ProgressRecordType object (value 1 = Completed); plain ints and names are accepted too.
    value = getattr(progress_type, "value", progress_type)
    return value == 1 or str(value).lower() == "completed"


def to_progress(record: Any) -> Progress:
    """A pypsrp ProgressRecord (or a dict with the same field names) as plain data."""
    raw = _field(record, "percent_complete")
    percent = None if raw is None or int(raw) < 0 else min(int(raw), 100)
    completed = _is_completed(_field(record, "progress_type"))
    if completed and percent is None:
        percent = 100
    return Progress(str(_field(record, "activity") or ""), percent, completed)


def latest_progress(records: list[Any]) -> Progress | None:
    """The newest record, keeping the last known percentage when the newest carries none."""
    if not records:
        return None
    known = [p for p in map(to_progress, records) if p.percent is not None]
    newest = to_progress(records[-1])
    if newest.percent is None and known:
        return Progress(newest.activity or known[-1].activity, known[-1].percent, newest.completed)
    return newest


def render_bar(percent: int | None, width: int = 20) -> str:
    """``[██████░░░░░░░░░░░░░░]  30%``; an empty bar and ``--%`` before the first percentage."""
    if percent is None:
        return "[" + "░" * width + "]  --%"
    filled = round(width * max(0, min(percent, 100)) / 100)
    return "[" + "█" * filled + "░" * (width - filled) + f"] {percent:3d}%"


def render_progress(progress: Progress | None, width: int = 20) -> str:
    if progress is None:
        return render_bar(None, width) + " starting"
    return f"{render_bar(progress.percent, width)} {progress.activity}".rstrip()


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min 5 s``, ``2 h 3 min``: for the final "exported in ..." line."""
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


class ProgressThrottle:
    """Decides when a progress update is worth posting: the first, then at most every `min_interval_s`,
    only when something changed, and always the final one."""

    def __init__(self, min_interval_s: float) -> None:
        if min_interval_s < 0:
            raise ValueError("min_interval_s must not be negative")
        self.min_interval_s = min_interval_s
        self._last_sent_at: float | None = None
        self._last_text: str | None = None

    def should_send(self, now: float, text: str, final: bool = False) -> bool:
        """`now` is a monotonic clock reading in seconds; `text` is what would be posted."""
        if not final:
            if text == self._last_text:
                return False
            if self._last_sent_at is not None and now - self._last_sent_at < self.min_interval_s:
                return False
        self._last_sent_at, self._last_text = now, text
        return True


# -- export target path --------------------------------------------------------------------------------


class ExportPathError(ValueError):
    """The export folder is not usable; the message says why and what a good one looks like."""


_EXAMPLES = r"use a full path on the host such as D:\Exports or a share such as \\server\share\exports"
_RESERVED_CHARS = set('<>:"|?*[]')
_DEVICE = re.compile(r"^(CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|COM[0-9¹²³]|LPT[0-9¹²³])(\..*)?$", re.IGNORECASE)
_DRIVE = re.compile(r"^[A-Za-z]:$")
_SERVER = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$")
MAX_PATH = 260


def validate_export_path(path: str) -> str:
    """Return the path (trimmed, trailing backslash dropped) or raise ExportPathError saying why."""
    text = path.strip()
    if not text:
        raise ExportPathError(f"no export path given; {_EXAMPLES}")
    if "/" in text:
        raise ExportPathError(f"use backslashes in Windows paths ({text!r}); {_EXAMPLES}")
    if text.startswith(("\\\\?\\", "\\\\.\\")):
        raise ExportPathError(f"device and \\\\?\\ paths are not accepted; {_EXAMPLES}")
    if any(ord(ch) < 32 for ch in text):
        raise ExportPathError("the export path contains control characters")
    if len(text) > MAX_PATH:
        raise ExportPathError(f"the export path is longer than {MAX_PATH} characters")
    if "\\\\" in text[2:]:
        raise ExportPathError(f"{text!r} has an empty folder name (two backslashes in a row)")
    parsed = PureWindowsPath(text)
    if text.startswith("\\\\"):
        _check_unc(text)
    elif not (_DRIVE.match(parsed.drive) and parsed.root == "\\"):
        raise ExportPathError(f"{text!r} is not an absolute path; {_EXAMPLES}")
    for part in text.split("\\")[1 if parsed.drive[1:2] == ":" else 4:]:
        _check_component(part, text)
    return text.rstrip("\\") if len(text) > 3 else text


def _check_unc(text: str) -> None:
    pieces = text[2:].split("\\")
    if len(pieces) < 2 or not pieces[0] or not pieces[1]:
        raise ExportPathError(f"{text!r} is not a UNC path with a server and a share; {_EXAMPLES}")
    if not _SERVER.match(pieces[0]):
        raise ExportPathError(f"{pieces[0]!r} is not a valid server name")
    _check_component(pieces[1], text)


def _check_component(part: str, text: str) -> None:
    if part == "":
        return  # a trailing backslash; empty parts in the middle are caught below
    if part in (".", ".."):
        raise ExportPathError(f"'.' and '..' are not allowed in {text!r}; give the full path")
    bad = sorted(_RESERVED_CHARS.intersection(part))
    if bad:
        raise ExportPathError(f"{part!r} contains characters Windows or PowerShell reserve: {' '.join(bad)}")
    if _DEVICE.match(part):
        raise ExportPathError(f"{part!r} is a Windows device name and cannot be a folder")
    if part != part.rstrip(" ."):
        raise ExportPathError(f"{part!r} ends with a space or a dot, which Windows drops")


# -- which checkpoints can be exported -----------------------------------------------------------------

# SnapshotType (§3.5): name -> integer; the integers are what PSRP carries next to the name.
REPLICA_POINT_TYPES = {"Replica": 6, "AppConsistentReplica": 7, "SyncedReplica": 8}
REPLICA_POINT_REASON = (
    "it is a Hyper-V Replica recovery point: since Windows Server 2012 R2 recovery points are kept as undo "
    "logs (.HRU) on the replica, and VM export does not carry them, so Export-VMSnapshot cannot produce a "
    "standalone copy from it. Export a standard checkpoint instead, or export the replica VM itself."
)


class ReplicaRecoveryPointError(ValueError):
    """Export refused for a Replica-type recovery point."""


def refuse_replica_point(checkpoint: str, snapshot_type: str | int) -> None:
    """Raise ReplicaRecoveryPointError when the checkpoint is a Replica recovery point (§1.2, §3.5)."""
    is_replica = (snapshot_type in REPLICA_POINT_TYPES.values() if isinstance(snapshot_type, int)
                  else str(snapshot_type) in REPLICA_POINT_TYPES)
    if is_replica:
        raise ReplicaRecoveryPointError(f"Cannot export checkpoint {checkpoint!r} ({snapshot_type}): "
                                        f"{REPLICA_POINT_REASON}")
