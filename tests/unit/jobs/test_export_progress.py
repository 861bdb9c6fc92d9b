"""Checkpoint export: progress bar, update pacing, export path rules, Replica recovery points refused."""

from __future__ import annotations

import re

import pytest
from pypsrp.complex_objects import ProgressRecordType
from pypsrp.messages import ProgressRecord

from jobs.backup.export_progress import (
    ExportPathError,
    Progress,
    ProgressThrottle,
    ReplicaRecoveryPointError,
    format_duration,
    latest_progress,
    refuse_replica_point,
    render_bar,
    render_progress,
    to_progress,
    validate_export_path,
)

ACTIVITY = "Export a virtual machine snapshot"


def record(percent: int, completed: bool = False) -> ProgressRecord:
    kind = ProgressRecordType(value=ProgressRecordType.COMPLETED if completed else ProgressRecordType.PROCESSING)
    return ProgressRecord(activity=ACTIVITY, activity_id=0, description=f"{percent}%",
                          percent_complete=percent, progress_type=kind)


def test_bar_and_percent() -> None:
    assert render_bar(0, width=10) == "[░░░░░░░░░░]   0%"
    assert render_bar(30, width=10) == "[███░░░░░░░]  30%"
    assert render_bar(100, width=10) == "[██████████] 100%"
    assert render_bar(None, width=10) == "[░░░░░░░░░░]  --%"
    assert render_progress(Progress(ACTIVITY, 45), width=10) == f"[████░░░░░░]  45% {ACTIVITY}"
    assert render_progress(None, width=4) == "[░░░░]  --% starting"


def test_progress_from_pypsrp_records() -> None:
    assert to_progress(record(40)) == Progress(ACTIVITY, 40, False)
    assert to_progress(record(100, completed=True)).completed
    assert to_progress({"activity": ACTIVITY, "percent_complete": -1, "progress_type": 0}).percent is None
    assert to_progress({"activity": "x", "percent_complete": -1, "progress_type": "Completed"}).percent == 100
    assert latest_progress([]) is None
    no_percent = {"activity": ACTIVITY, "percent_complete": -1, "progress_type": 0}
    assert latest_progress([record(20), record(60), no_percent]) == Progress(ACTIVITY, 60, False)


def test_throttle_paces_a_ten_step_export_and_always_sends_the_final() -> None:
    """Ten progress records 3 s apart, updates at most every 10 s."""
    throttle = ProgressThrottle(min_interval_s=10)
    sent: list[tuple[float, str]] = []
    records = [record(p * 10, completed=(p == 10)) for p in range(1, 11)]
    for step in range(1, 11):
        now = step * 3.0
        progress = latest_progress(records[:step])
        text = render_progress(progress)
        if throttle.should_send(now, text, final=progress is not None and progress.completed):
            sent.append((now, text))
    times = [t for t, _ in sent]
    assert len(sent) >= 3
    assert times == [3.0, 15.0, 27.0, 30.0]  # first, then every >= 10 s, then the final one
    assert all(b - a >= 10 for a, b in zip(times[:-2], times[1:-1]))
    assert sent[-1][1].startswith("[████████████████████] 100%")


def test_throttle_skips_unchanged_text_and_rejects_negative_interval() -> None:
    throttle = ProgressThrottle(min_interval_s=0)
    assert throttle.should_send(0, "a")
    assert not throttle.should_send(1, "a")
    assert throttle.should_send(1, "a", final=True)
    with pytest.raises(ValueError):
        ProgressThrottle(-1)


@pytest.mark.parametrize(("path", "expected"), [
    ("D:\\Exports", "D:\\Exports"),
    ("d:\\Exports\\web01\\", "d:\\Exports\\web01"),
    ("E:\\", "E:\\"),
    ("  C:\\VM Exports\\2026-05 ", "C:\\VM Exports\\2026-05"),
    ("\\\\backup01\\exports", "\\\\backup01\\exports"),
    ("\\\\nas.corp.example\\hv$\\web01\\", "\\\\nas.corp.example\\hv$\\web01"),
    ("\\\\10.0.0.5\\share\\dir", "\\\\10.0.0.5\\share\\dir"),
])
def test_good_export_paths(path: str, expected: str) -> None:
    assert validate_export_path(path) == expected


@pytest.mark.parametrize(("path", "message"), [
    ("", "no export path"),
    ("Exports", "not an absolute path"),
    ("Exports\\web01", "not an absolute path"),
    ("C:Exports", "not an absolute path"),
    ("\\Exports", "not an absolute path"),
    ("D:", "not an absolute path"),
    ("D:/Exports", "backslashes"),
    ("D:\\Exports\\..\\Windows", "'.' and '..'"),
    ("D:\\Exports\\.\\x", "'.' and '..'"),
    ("D:\\Ex|ports", "reserve: |"),
    ("D:\\Exports\\a:b", "reserve: :"),
    ("D:\\Exports\\what?*", "reserve: * ?"),
    ("D:\\Exports\\[web]", "reserve: [ ]"),
    ("D:\\Exports\\CON", "device name"),
    ("D:\\nul.txt", "device name"),
    ("\\\\server\\share\\com1", "device name"),
    ("D:\\Exports\\web01.", "space or a dot"),
    ("D:\\Exports\\web01 \\x", "space or a dot"),
    ("D:\\Exports\\\\web01", "two backslashes"),
    ("D:\\Exp\x07orts", "control characters"),
    ("\\\\server", "server and a share"),
    ("\\\\server\\", "server and a share"),
    ("\\\\ser ver\\share", "not a valid server name"),
    ("\\\\?\\D:\\Exports", "device and"),
    ("\\\\.\\PhysicalDrive0", "device and"),
    ("D:\\" + "x" * 300, "longer than 260"),
])
def test_bad_export_paths_say_why(path: str, message: str) -> None:
    with pytest.raises(ExportPathError, match=re.escape(message)):
        validate_export_path(path)


@pytest.mark.parametrize("kind", ["Replica", "AppConsistentReplica", "SyncedReplica", 6, 7, 8])
def test_replica_recovery_points_are_refused_with_the_reason(kind: str | int) -> None:
    with pytest.raises(ReplicaRecoveryPointError, match=r"undo logs \(\.HRU\).*does not carry them"):
        refuse_replica_point("web01 - recovery point", kind)


@pytest.mark.parametrize("kind", ["Standard", "Recovery", "Planned", 0, 1, 2])
def test_other_checkpoints_may_be_exported(kind: str | int) -> None:
    refuse_replica_point("before patch", kind)


def test_duration_text() -> None:
    assert format_duration(45) == "45 s"
    assert format_duration(725) == "12 min 5 s"
    assert format_duration(7380) == "2 h 3 min"
