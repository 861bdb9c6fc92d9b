from datetime import datetime, timezone

from jobs import housekeeping


def test_one_failing_chore_does_not_stop_the_others(monkeypatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(
        housekeeping,
        "CHORES",
        {"boom": _boom, "fine": _fine},
    )
    monkeypatch.setattr(__import__("tests.unit.jobs.test_housekeeping", fromlist=["x"]), "_CALLS", calls)
    out = housekeeping.run_housekeeping(None, datetime(2026, 1, 1, tzinfo=timezone.utc))  # type: ignore[arg-type]
    assert out["boom"] == "failed: RuntimeError"
    assert out["fine"] == "ok: 3"
    assert calls == ["fine"]


_CALLS: list[str] = []


def _boom(connection: object, now: datetime) -> None:
    raise RuntimeError("chore bug")


def _fine(connection: object, now: datetime) -> int:
    _CALLS.append("fine")
    return 3
