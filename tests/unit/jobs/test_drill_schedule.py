"""Drill schedules and the test-network verdict (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobs.recovery.drill_checks import Adapter, judge
from jobs.recovery.drill_schedule import ScheduleError, check, next_due, overdue, parse_at
from jobs.recovery.model import DrillSchedule

SUN = DrillSchedule(every_s=30 * 86400, at="Sun 03:00")


def test_first_drill_is_the_first_slot_after_the_schedule_was_set() -> None:
    since = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # a Wednesday
    assert next_due(SUN, since, None) == datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


def test_next_drill_is_the_first_slot_a_period_after_the_last() -> None:
    last = datetime(2026, 12, 6, 3, 0, 20, tzinfo=UTC)
    due = next_due(SUN, last - timedelta(days=40), last)
    assert due == datetime(2027, 1, 10, 3, 0, tzinfo=UTC) and due.weekday() == 6
    assert due - last >= timedelta(days=30)


def test_without_a_time_the_first_drill_is_due_at_once() -> None:
    since = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    assert next_due(DrillSchedule(every_s=86400), since, None) == since


def test_bad_times_and_periods_are_refused_with_what_to_write() -> None:
    with pytest.raises(ScheduleError, match="Sun 03:00"):
        parse_at("sunday at three")
    with pytest.raises(ScheduleError, match="between 1 hour and 366 days"):
        check(DrillSchedule(every_s=60))
    assert parse_at("03:30").weekday is None and parse_at("monday 3:05").weekday == 0


def test_a_plan_is_overdue_only_past_its_period_and_the_slot_slack() -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    daily = DrillSchedule(every_s=86400)
    assert not overdue(daily, since, None, since + timedelta(hours=23))
    assert overdue(daily, since, None, since + timedelta(hours=25))
    assert not overdue(daily, since, since + timedelta(hours=20), since + timedelta(hours=25))
    assert not overdue(SUN, since, None, since + timedelta(days=36))  # waiting for its Sunday
    assert overdue(SUN, since, None, since + timedelta(days=38))


def test_a_test_switch_that_is_a_production_switch_is_refused() -> None:
    host = [Adapter("fw01", "LAN", "vSwitch-LAN", "vSwitch-LAN"), Adapter("fw01", "WAN", "vSwitch-WAN", ""),
            Adapter("sql01", "Network Adapter", "vSwitch-DB", ""), Adapter("web01", "NIC", "vSwitch-LAN", "vSwitch-DB"),
            Adapter("app01", "NIC", "vSwitch-LAN", "vSwitch-Test"),
            Adapter("old - Test", "NIC", "vSwitch-Iso", "")]
    refusals, notes = judge("fw01", "hv-b1", host)
    assert len(refusals) == 1 and "'vSwitch-LAN', which is its own production switch" in refusals[0]
    assert "TestReplicaSwitchName" in refusals[0] and "not connected" in notes[0]
    assert "a production switch on that host" in judge("web01", "hv-b1", host)[0][0]
    assert judge("app01", "hv-b1", host) == ([], ["adapter 'NIC': test switch 'vSwitch-Test'"])
    assert judge("sql01", "hv-b1", host)[0] == []  # no test switch: the test VM is isolated
