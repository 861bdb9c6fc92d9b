"""The backup/export verbs' argument shapes: DURATION, --at TIME, Windows and UNC export paths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.grammar import CommandError, parse, parse_at, parse_duration


@pytest.mark.parametrize(("text", "args"), [
    ("backup-check fw01", ("fw01",)),
    ("backup-window fw01 1h30m", ("fw01", "1h30m")),
    ("backup-window fw01 END", ("fw01", "END")),
    ('checkpoint web01 "before patch"', ("web01", "before patch")),
    (r"export web01 baseline D:\Exports", ("web01", "baseline", r"D:\Exports")),
    (r"export web01 baseline \\fs01\share\web01", ("web01", "baseline", r"\\fs01\share\web01")),
    (r'export web01 baseline "E:\VM Exports\"', ("web01", "baseline", "E:\\VM Exports\\")),
])
def test_valid_commands_parse(text: str, args: tuple[str, ...]) -> None:
    assert parse(text).args == args


@pytest.mark.parametrize(("text", "message"), [
    ("backup-window fw01", "needs a VM and a DURATION"),
    ("backup-window fw01 13h", "at most 12 h"),
    ("backup-window fw01 soon", "not a duration"),
    ("checkpoint", "needs a VM"),
    ("checkpoint web* x", "no * wildcards"),
    ("export web01 baseline D:/x", "use backslashes"),
    (r"export web01 baseline C:\a\CON", "device name"),
    (r"export web01 baseline \\srv", "UNC path with a server and a share"),
    (r"export web01 base;line D:\x", "not a valid checkpoint name"),
])
def test_bad_input_is_explained_with_usage(text: str, message: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse(text)
    assert message in caught.value.message and caught.value.usage.startswith("/hyperv ")


def test_durations_and_times() -> None:
    assert parse_duration("90m") == timedelta(minutes=90)
    now = datetime(2025, 6, 1, 22, 0, tzinfo=UTC)
    assert parse_at("23:00", now) == datetime(2025, 6, 1, 23, 0, tzinfo=UTC)
    assert parse_at("21:00", now) == datetime(2025, 6, 2, 21, 0, tzinfo=UTC)  # the next 21:00
    assert parse_at("2025-06-02T01:00+02:00", now) == datetime(2025, 6, 1, 23, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="in the past"):
        parse_at("2025-06-01T21:00", now)
