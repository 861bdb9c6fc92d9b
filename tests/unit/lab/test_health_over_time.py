"""Health judged over the monitoring interval (hyperv.md §1.9, §3.7): a long pause leaves a resumed relationship
Warning until enough good cycles pass, the interval rolls over, or Reset-VMReplicationStatistics clears it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from lab.cmdlets import HyperVEngine
from lab.fleet_file import default_fleet
from lab.model import Fleet
from tests.support.lab_io import NOW, cmd, run, wire


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def timed(clock: Clock) -> Fleet:
    fleet = default_fleet(now=NOW)
    fleet.clock = clock
    return fleet


def _call(fleet: Fleet, host: str, cmdlet: str, **params: Any) -> list[Any]:
    io = run(HyperVEngine(fleet, host), cmd(cmdlet, VMName=["fw01"], ErrorAction="Stop", **params))
    assert io.failed is None and not io.errors, (io.failed, io.errors)
    return [wire(o) for o in io.out]


def _health(fleet: Fleet, host: str = "hv-a1") -> tuple[str, str, int, int]:
    (m,) = _call(fleet, host, "Measure-VMReplication")
    return str(m.ReplicationState), str(m.ReplicationHealth), m.SuccessfulReplicationCount, m.MissedReplicationCount


def _pause(fleet: Fleet, clock: Clock, hours: float) -> None:
    _call(fleet, "hv-a1", "Suspend-VMReplication", ReplicationRelationshipType="Simple")
    clock.now += timedelta(hours=hours)
    _call(fleet, "hv-a1", "Resume-VMReplication", ReplicationRelationshipType="Simple")


def test_a_new_fleet_is_half_way_through_a_healthy_interval(timed: Fleet) -> None:
    assert _health(timed) == ("Replicating", "Normal", 720, 0)  # fw01: 6 h of 30-second cycles, none missed


def test_a_short_pause_resumes_normal(timed: Fleet, clock: Clock) -> None:
    _pause(timed, clock, 1)
    assert _health(timed) == ("Replicating", "Normal", 720, 120)  # 120 of 840 missed: 14 %, under 20 %


def test_a_long_pause_stays_warning_after_resume_until_good_cycles_catch_up(timed: Fleet, clock: Clock) -> None:
    _pause(timed, clock, 2)
    state, health, ok, missed = _health(timed)
    assert (state, health, ok, missed) == ("Replicating", "Warning", 720, 240)  # 25 % missed
    (m,) = _call(timed, "hv-a1", "Measure-VMReplication")
    assert any("20 percent" in d for d in m.ReplicationHealthDetails)
    clock.now += timedelta(minutes=110)  # 220 more good cycles: 240 / 1180 is still over 20 %
    assert _health(timed)[1] == "Warning"
    clock.now += timedelta(minutes=10)  # 240 / 1200 = 20 %: not over it
    assert _health(timed) == ("Replicating", "Normal", 960, 240)


def test_reset_statistics_clears_the_warning_at_once(timed: Fleet, clock: Clock) -> None:
    _pause(timed, clock, 3)
    assert _health(timed)[1] == "Warning"
    assert _call(timed, "hv-a1", "Reset-VMReplicationStatistics", ReplicationRelationshipType="Simple") == []
    assert _health(timed) == ("Replicating", "Normal", 0, 0)
    (m,) = _call(timed, "hv-a1", "Measure-VMReplication")
    assert m.MonitoringStartTime == m.MonitoringEndTime  # collection restarted now


def test_the_next_monitoring_interval_starts_clean(timed: Fleet, clock: Clock) -> None:
    _pause(timed, clock, 3)
    assert _health(timed)[1] == "Warning"
    clock.now += timedelta(hours=3, minutes=30)  # past the 12 h interval that began 6 h before NOW
    state, health, ok, missed = _health(timed)
    assert (state, health, missed) == ("Replicating", "Normal", 0) and ok == 60  # the new interval's half hour


def test_a_warning_a_transition_set_is_not_cleared_by_good_statistics(timed: Fleet, clock: Clock) -> None:
    _call(timed, "hv-a1", "Suspend-VMReplication", ReplicationRelationshipType="Simple")
    assert _health(timed)[:2] == ("Suspended", "Warning")  # paused on the primary (§3.7)
    clock.now += timedelta(minutes=10)
    assert _health(timed)[:2] == ("Suspended", "Warning")


def test_reset_on_a_vm_without_replication_is_refused_with_the_hosts_text(timed: Fleet) -> None:
    io = run(HyperVEngine(timed, "hv-a1"), cmd("Reset-VMReplicationStatistics", VMName=["app01"]))
    assert io.failed is None and len(io.errors) == 1
    assert "'Reset-VMReplicationStatistics' is not applicable on virtual machine 'app01'." in str(io.errors[0])


def test_suspend_with_a_relationship_type_touches_only_that_relationship() -> None:
    fleet = default_fleet(now=NOW)
    fleet.clock = lambda: NOW
    engine = HyperVEngine(fleet, "hv-b2")  # mail02's replica, extending to hv-b1
    io = run(engine, cmd("Suspend-VMReplication", VMName=["mail02"], ReplicationRelationshipType="Simple"))
    assert io.failed is None and not io.errors
    io = run(engine, cmd("Get-VMReplication", VMName=["mail02"]))
    states = {str(wire(o).ReplicationRelationshipType): str(wire(o).ReplicationState) for o in io.out}
    assert states == {"Simple": "Suspended", "Extended": "Replicating"}
    io = run(engine, cmd("Suspend-VMReplication", VMName=["mail02"], ReplicationRelationshipType="Extended"))
    io = run(engine, cmd("Get-VMReplication", VMName=["mail02"], ReplicationRelationshipType="Extended"))
    assert str(wire(io.out[0]).ReplicationState) == "Suspended"
