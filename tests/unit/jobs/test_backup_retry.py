"""Retry policy for backup readiness: schedule, retry on transient, give up on permanent or exhausted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from jobs.backup.conditions import evaluate
from jobs.backup.retry import Outcome, RetryPolicy, decide
from tests.unit.jobs.test_backup_conditions import RECEIVED, healthy

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
APPLYING = healthy(last_applied_log_time=RECEIVED - timedelta(seconds=10))


def test_default_schedule_is_five_attempts_from_30_s_to_10_min() -> None:
    policy = RetryPolicy()
    assert policy.max_attempts == 5
    assert policy.delays() == [30.0, 81.0, 221.0, 600.0]
    times = policy.schedule(NOW)
    assert len(times) == 5 and times[0] == NOW
    assert times[-1] - NOW == timedelta(seconds=932)
    assert policy.budget_s == 932


@pytest.mark.parametrize(("attempts", "delays"), [(1, []), (2, [30.0]), (3, [30.0, 600.0])])
def test_short_policies(attempts: int, delays: list[float]) -> None:
    assert RetryPolicy(max_attempts=attempts).delays() == delays


def test_policy_is_configurable_and_validated() -> None:
    policy = RetryPolicy.model_validate({"max_attempts": 4, "first_delay_s": 10, "max_delay_s": 90})
    assert policy.delays() == [10.0, 30.0, 90.0]
    with pytest.raises(ValidationError):
        RetryPolicy(first_delay_s=60, max_delay_s=30)
    with pytest.raises(ValidationError):
        RetryPolicy(max_attempts=0)


def test_transient_not_ready_retries_on_schedule_then_gives_up() -> None:
    policy = RetryPolicy()
    readiness = evaluate(APPLYING)
    for attempt, delay in enumerate(policy.delays(), start=1):
        decision = decide(readiness, attempt, NOW, policy)
        assert decision.outcome is Outcome.RETRY
        assert decision.retry_at == NOW + timedelta(seconds=delay)
        assert f"attempt {attempt + 1} of 5" in decision.reason
    last = decide(readiness, 5, NOW, policy)
    assert last.outcome is Outcome.GIVE_UP and last.transient and last.retry_at is None
    assert "try later" in last.reason


def test_permanent_condition_gives_up_at_once() -> None:
    decision = decide(evaluate(healthy(health="Critical")), 1, NOW)
    assert decision.outcome is Outcome.GIVE_UP and not decision.transient
    assert "replica health is Critical" in decision.reason


def test_ready_is_done_whatever_the_attempt() -> None:
    for attempt in (1, 3, 5):
        decision = decide(evaluate(healthy()), attempt, NOW)
        assert decision.outcome is Outcome.DONE
        assert decision.to_dict()["outcome"] == "done"


def test_apply_window_ending_within_budget_gives_one_success() -> None:
    """A log apply that is over by the third check: two retries, then done."""
    policy = RetryPolicy()
    observed = [evaluate(APPLYING), evaluate(APPLYING), evaluate(healthy())]
    outcomes = [decide(r, n, NOW, policy).outcome for n, r in enumerate(observed, start=1)]
    assert outcomes == [Outcome.RETRY, Outcome.RETRY, Outcome.DONE]
