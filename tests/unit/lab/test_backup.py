"""Replica-backup behaviour of the lab model on a hand-moved clock: log-apply cycles, the observable §4
conditions, resynchronization, suspend/resume on either side, injected resume failures."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from lab.clock import ManualClock
from lab.cmdlets import HyperVEngine
from lab.fleet_file import default_fleet
from lab.model import Fleet
from tests.support.lab_io import cmd, run, wire

T0 = datetime(2025, 6, 2, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def fleet(clock: ManualClock) -> Fleet:
    fleet = default_fleet(now=T0)
    fleet.clock = clock
    return fleet


def replica_view(fleet: Fleet, vm: str = "fw01", host: str = "hv-b1") -> Any:
    """What Measure-VMReplication on the replica host shows (through the engine and the wire)."""
    io = run(HyperVEngine(fleet, host), cmd("Measure-VMReplication", VMName=[vm]))
    assert not io.errors and io.failed is None, io.errors
    return wire(io.out[0])


def applying(view: Any) -> bool:
    """§4 condition 1 as a backup checker sees it."""
    return view.LastReplicationTime > view.LastAppliedLogTime if view.LastAppliedLogTime else True


def test_log_apply_cycles_follow_the_frequency_on_the_fleet_clock(fleet: Fleet, clock: ManualClock) -> None:
    # fw01 replicates every 30 s; applying each log takes 6 s
    fleet.apply_control("backup_condition", {"host": "hv-b1", "vm": "fw01", "condition": "log_apply",
                                             "apply_seconds": 6})
    seen = []
    for second in (0, 3, 6, 20, 30, 33, 36, 59, 61):
        clock.set(T0 + timedelta(seconds=second))
        view = replica_view(fleet)
        seen.append((second, applying(view), list(view.CurrentTask or [])))
    assert [(s, a) for s, a, _ in seen] == [(0, True), (3, True), (6, False), (20, False), (30, True), (33, True),
                                            (36, False), (59, False), (61, True)]
    assert seen[1][2] == ["Microsoft.HyperV.PowerShell.VMCurrentTask"] and seen[2][2] == []
    clock.set(T0 + timedelta(seconds=33))
    view = replica_view(fleet)
    assert view.LastReplicationTime == T0 + timedelta(seconds=30)
    assert view.LastAppliedLogTime == T0


def test_log_apply_off_and_bad_durations(fleet: Fleet, clock: ManualClock) -> None:
    args = {"host": "hv-a1", "vm": "fw01", "condition": "log_apply"}  # the primary's name finds the replica
    with pytest.raises(ValueError, match="shorter than the replication frequency"):
        fleet.apply_control("backup_condition", {**args, "apply_seconds": 30})
    fleet.apply_control("backup_condition", {**args, "apply_seconds": 5})
    assert applying(replica_view(fleet))
    fleet.apply_control("backup_condition", {**args, "on": False})
    clock.advance(1)
    view = replica_view(fleet)
    assert not applying(view) and not view.CurrentTask


def test_suspend_stops_cycles_and_resume_sends_a_log_that_is_applied(fleet: Fleet, clock: ManualClock) -> None:
    fleet.apply_control("backup_condition", {"host": "hv-b1", "vm": "fw01", "condition": "log_apply",
                                             "apply_seconds": 4})
    b1 = HyperVEngine(fleet, "hv-b1")
    clock.advance(2)  # mid-apply
    assert not run(b1, cmd("Suspend-VMReplication", VMName=["fw01"])).errors
    for _ in range(3):
        clock.advance(30)
        view = replica_view(fleet)
        assert str(view.ReplicationState) == "Suspended"
        assert not applying(view) and not view.CurrentTask  # the apply in progress completed; no new logs
        assert str(view.ReplicationHealth) == "Critical"  # paused on the replica [BLOG-H1]
    assert not run(b1, cmd("Resume-VMReplication", VMName=["fw01"])).errors
    view = replica_view(fleet)
    assert str(view.ReplicationState) == "Replicating" and str(view.ReplicationHealth) == "Normal"
    assert applying(view)  # the changes made during the pause arrive now and are applied
    clock.advance(4)
    assert not applying(replica_view(fleet))


def test_pause_on_the_primary_is_warning_and_leaves_the_replica(fleet: Fleet) -> None:
    a1 = HyperVEngine(fleet, "hv-a1")
    assert not run(a1, cmd("Suspend-VMReplication", VMName=["fw01"])).errors
    primary = wire(run(a1, cmd("Get-VMReplication", VMName=["fw01"])).out[0])
    assert (str(primary.ReplicationState), str(primary.ReplicationHealth)) == ("Suspended", "Warning")
    assert str(replica_view(fleet).ReplicationState) == "Replicating"
    assert not run(a1, cmd("Resume-VMReplication", VMName=["fw01"])).errors
    primary = wire(run(a1, cmd("Get-VMReplication", VMName=["fw01"])).out[0])
    assert (str(primary.ReplicationState), str(primary.ReplicationHealth)) == ("Replicating", "Normal")


CONDITIONS = [
    ("health_critical", {}, lambda r, p, v: str(r.ReplicationHealth) == "Critical" and r.ReplicationHealthDetails),
    ("apply_failed", {}, lambda r, p, v: (str(r.ReplicationState), str(r.ReplicationHealth)) == ("Error", "Critical")),
    ("resync_required", {}, lambda r, p, v: str(p.ReplicationState) == "WaitingForStartResynchronize"
     and str(r.ReplicationState) == "Disabled" and str(r.ReplicationHealth) == "Critical"),
    ("resync_in_progress", {}, lambda r, p, v: str(r.ReplicationState) == str(p.ReplicationState) == "Resynchronizing"),
    ("migration", {"status": "StorageMigrationPhaseOne"},
     lambda r, p, v: [str(s) for s in v.OperationalStatus] == ["Ok", "StorageMigrationPhaseOne"]),
    ("initial_replication", {}, lambda r, p, v: str(r.ReplicationState) == "WaitingForInitialReplication"
     and r.LastReplicationTime is None and str(p.ReplicationState) == "InitialReplicationInProgress"),
    ("failover", {}, lambda r, p, v: str(r.ReplicationState) == "RecoveryInProgress"),
    ("failover", {"state": "FiredrillInProgress"}, lambda r, p, v: str(r.ReplicationState) == "FiredrillInProgress"),
    ("test_vm", {}, lambda r, p, v: r.TestVirtualMachine is not None),
]


def _sides(fleet: Fleet) -> tuple[Any, Any, Any]:
    b1, a1 = HyperVEngine(fleet, "hv-b1"), HyperVEngine(fleet, "hv-a1")
    replica = wire(run(b1, cmd("Measure-VMReplication", VMName=["fw01"])).out[0])
    primary = wire(run(a1, cmd("Get-VMReplication", VMName=["fw01"])).out[0])
    vm = wire(run(b1, cmd("Get-VM", Name=["fw01"])).out[0])
    return replica, primary, vm


def _clear(r: Any, p: Any, v: Any) -> bool:
    return (str(r.ReplicationState), str(r.ReplicationHealth), str(p.ReplicationState)) == (
        "Replicating", "Normal", "Replicating") and r.TestVirtualMachine is None and [
        str(s) for s in v.OperationalStatus] == ["Ok"] and r.LastReplicationTime is not None


@pytest.mark.parametrize("condition, extra, holds", CONDITIONS, ids=[c[0] + str(c[1]) for c in CONDITIONS])
def test_each_condition_is_observable_then_cleared(fleet: Fleet, condition: str, extra: dict[str, Any],
                                                   holds: Any) -> None:
    assert _clear(*_sides(fleet))
    out = fleet.apply_control("backup_condition", {"host": "hv-b1", "vm": "fw01", "condition": condition, **extra})
    assert out["condition"] == condition and out["replica"]["host"] == "hv-b1"
    assert holds(*_sides(fleet))
    fleet.apply_control("backup_condition", {"host": "hv-b1", "vm": "fw01", "condition": condition, "on": False,
                                             **extra})
    assert _clear(*_sides(fleet))


def test_bad_condition_arguments(fleet: Fleet) -> None:
    with pytest.raises(ValueError, match="unknown condition"):
        fleet.apply_control("backup_condition", {"host": "hv-b1", "vm": "fw01", "condition": "gremlins"})
    with pytest.raises(ValueError, match="not replicated"):
        fleet.apply_control("backup_condition", {"host": "hv-a1", "vm": "app01", "condition": "health_critical"})
    with pytest.raises(ValueError, match="missing argument: condition"):
        fleet.apply_control("backup_condition", {"host": "hv-b1", "vm": "fw01"})
    with pytest.raises(ValueError, match="status must be one of"):
        fleet.apply_control("backup_condition", {"host": "hv-b1", "vm": "fw01", "condition": "migration",
                                                 "status": "Ok"})


def test_resync_runs_on_the_clock_pauses_and_continues(fleet: Fleet, clock: ManualClock) -> None:
    fleet.apply_control("replication", {"host": "hv-a1", "vm": "fw01", "resync_seconds": 100})
    fleet.apply_control("backup_condition", {"host": "hv-a1", "vm": "fw01", "condition": "resync_required"})
    a1 = HyperVEngine(fleet, "hv-a1")
    refused = run(a1, cmd("Resume-VMReplication", VMName=["fw01"]))
    assert "current replication state" in str(refused.errors[0])
    assert not run(a1, cmd("Resume-VMReplication", VMName=["fw01"], Resynchronize=None)).errors
    clock.advance(40)
    assert str(_sides(fleet)[0].ReplicationState) == "Resynchronizing"
    assert not run(a1, cmd("Suspend-VMReplication", VMName=["fw01"])).errors
    replica, primary, _ = _sides(fleet)
    assert str(replica.ReplicationState) == str(primary.ReplicationState) == "ResynchronizeSuspended"
    clock.advance(1000)  # paused: no progress
    assert not run(a1, cmd("Resume-VMReplication", VMName=["fw01"])).errors
    clock.advance(59)
    assert str(_sides(fleet)[0].ReplicationState) == "Resynchronizing"
    clock.advance(1)  # 40 + 60 = the 100 s of the resync
    replica, primary, _ = _sides(fleet)
    assert (str(replica.ReplicationState), str(replica.ReplicationHealth)) == ("Replicating", "Normal")
    assert str(primary.ReplicationState) == "Replicating"


def test_injected_resume_failure_for_the_next_calls(fleet: Fleet) -> None:
    b1 = HyperVEngine(fleet, "hv-b1")
    assert not run(b1, cmd("Suspend-VMReplication", VMName=["fw01"])).errors
    fleet.apply_control("fail_next", {"host": "hv-b1", "vm": "fw01", "cmdlet": "Resume-VMReplication", "count": 2})
    for _ in range(2):
        io = run(b1, cmd("Resume-VMReplication", VMName=["fw01"]))
        assert len(io.errors) == 1 and io.failed is None  # non-terminating, like Hyper-V (§5.4)
        err = wire(io.errors[0])
        assert "failed to resume replication for virtual machine 'fw01'" in str(err)
        assert "hv-a1.lab.local" in str(err)  # the replica names its primary
        assert err.FullyQualifiedErrorId.startswith("ConnectionError,") and err.FullyQualifiedErrorId.endswith(
            "ResumeVMReplicationCommand")
        assert str(replica_view(fleet).ReplicationState) == "Suspended"
    stop = run(b1, cmd("Resume-VMReplication", VMName=["fw01"], ErrorAction="Stop"))
    assert stop.failed is None and not stop.errors  # the third call works
    assert str(replica_view(fleet).ReplicationState) == "Replicating"


def test_injection_arguments_are_checked(fleet: Fleet) -> None:
    with pytest.raises(ValueError, match="cmdlet must be one of"):
        fleet.apply_control("fail_next", {"host": "hv-b1", "cmdlet": "Get-VM"})
    with pytest.raises(ValueError, match="no VM named"):
        fleet.apply_control("fail_next", {"host": "hv-b1", "cmdlet": "Export-VMSnapshot", "vm": "ghost"})
    with pytest.raises(ValueError, match="count"):
        fleet.apply_control("fail_next", {"host": "hv-b1", "cmdlet": "Export-VMSnapshot", "count": 0})


def test_clock_control_freezes_advances_and_returns_to_real_time() -> None:
    fleet = default_fleet(now=T0)
    out = fleet.apply_control("clock", {"freeze": T0.isoformat()})
    assert out == {"now": T0.isoformat(), "manual": True}
    assert fleet.apply_control("clock", {"advance_s": 90})["now"] == (T0 + timedelta(seconds=90)).isoformat()
    assert fleet.apply_control("clock", {"real": True})["manual"] is False
    with pytest.raises(ValueError, match="freeze the clock"):
        fleet.apply_control("clock", {"advance_s": 1})


def test_fleet_file_can_start_log_apply_cycles(clock: ManualClock) -> None:
    from lab.fleet_file import fleet_from_dict

    data = {"hosts": [
        {"name": "p1", "site": "a", "vms": [{"name": "db", "replica": {"to": "r1", "frequency_sec": 30,
                                                                      "apply_seconds": 6}}]},
        {"name": "r1", "site": "b"}]}
    fleet = fleet_from_dict(data, now=T0)
    fleet.clock = clock
    assert applying(replica_view(fleet, "db", "r1"))
    clock.advance(6)
    assert not applying(replica_view(fleet, "db", "r1"))
