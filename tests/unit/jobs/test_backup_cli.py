"""CLI contract for backup products' scripts: exit codes 0 / 75 / 1, one line, stable --json shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from jobs.backup.conditions import evaluate
from jobs.backup.contract import (
    Command,
    ExitCode,
    check_result,
    failure_result,
    window_ended_result,
    window_started_result,
)
from jobs.backup.retry import RetryPolicy, decide
from jobs.backup.window import PauseSide, Window
from tests.unit.jobs.test_backup_conditions import RECEIVED, healthy

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
KEYS = {"version", "command", "vm", "status", "exit_code", "transient", "reason", "readiness", "decision",
        "window"}
APPLYING = healthy(last_applied_log_time=RECEIVED - timedelta(seconds=10))


def test_ready_exits_0() -> None:
    result = check_result(evaluate(healthy()))
    assert result.exit_code == ExitCode.OK == 0
    assert result.line.startswith("check web01: ready: web01 is ready for a backup.")
    assert "#2" in result.line and "\n" not in result.line
    doc = json.loads(result.json_text())
    assert set(doc) == KEYS
    assert doc["status"] == "ready" and doc["exit_code"] == 0 and doc["readiness"]["ready"] is True


def test_transient_not_ready_exits_75() -> None:
    readiness = evaluate(APPLYING)
    result = check_result(readiness)
    assert result.exit_code == ExitCode.TRY_LATER == 75
    assert "temporarily not ready" in result.line and "(#1)" in result.line
    exhausted = decide(readiness, 5, NOW, RetryPolicy())
    after_retries = check_result(readiness, exhausted)
    assert after_retries.exit_code == 75 and "try later" in after_retries.line
    assert after_retries.payload["decision"]["outcome"] == "give_up"


def test_permanent_not_ready_exits_1() -> None:
    readiness = evaluate(healthy(health="Critical"))
    result = check_result(readiness, decide(readiness, 1, NOW))
    assert result.exit_code == ExitCode.FAILED == 1
    assert result.payload["transient"] is False and "Retrying will not help" in result.line


def test_done_decision_with_not_ready_is_a_bug() -> None:
    with pytest.raises(ValueError):
        check_result(evaluate(APPLYING), decide(evaluate(healthy()), 1, NOW))


def test_window_start_and_end_exit_0_with_the_window() -> None:
    window = Window("web01", "hv-a1", PauseSide.PRIMARY, NOW, NOW + timedelta(hours=2), "cli")
    started = window_started_result(window)
    assert started.exit_code == 0 and started.payload["command"] == "start"
    assert "paused on the primary (hv-a1)" in started.line
    assert started.payload["window"]["end"] == "2026-05-04T14:00:00+00:00"
    ended = window_ended_result(window, "Replicating / Normal, last replication 12:00:01 UTC")
    assert ended.exit_code == 0 and json.loads(ended.json_text())["status"] == "done"
    assert "Replicating / Normal, last replication 12:00:01 UTC" in ended.line


def test_failures_map_to_1_or_75_on_one_line() -> None:
    hard = failure_result(Command.START, "web01", "web01 already has an open backup window")
    assert hard.exit_code == 1 and hard.payload["status"] == "failed"
    soft = failure_result("end", "web01", "host hv-a1 did not answer\nwithin 30 s", transient=True)
    assert soft.exit_code == 75 and soft.line == "end web01: failed: host hv-a1 did not answer within 30 s"
    long = failure_result("check", "web01", "x" * 1000)
    assert len(long.line) == 400 and set(long.payload) == KEYS
