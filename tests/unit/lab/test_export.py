"""Checkpoint-VM and Export-VMSnapshot on the lab engine: parameter sets, progress records, stop, refusals,
injected failures. Exports take 0 s here (``export_timing``); pacing over real time is the integration test's."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

import pytest

from lab.clock import ManualClock
from lab.cmdlets import HyperVEngine
from lab.engine import CommandCall, Invocation
from lab.fleet_file import default_fleet
from lab.model import Fleet
from tests.support.lab_io import MemoryIO, cmd, run, wire

T0 = datetime(2025, 6, 2, 14, 5, 9, tzinfo=timezone.utc)
ACTIVITY = "Export a virtual machine snapshot"


class ProgressIO(MemoryIO):
    """Keeps progress records; ``on_progress`` runs after each one (e.g. to press stop)."""

    def __init__(self, on_progress: Callable[["ProgressIO"], None] | None = None) -> None:
        super().__init__()
        self.records: list[tuple[str, str, int, bool]] = []
        self.on_progress = on_progress

    def progress(self, activity: str, status: str, percent: int, *, activity_id: int = 0,
                 completed: bool = False) -> None:
        self.records.append((activity, status, percent, completed))
        if self.on_progress:
            self.on_progress(self)


@pytest.fixture
def fleet() -> Fleet:
    fleet = default_fleet(now=T0)
    fleet.clock = ManualClock(T0)
    fleet.apply_control("export_timing", {"seconds": 0, "steps": 10})
    return fleet


def export(fleet: Fleet, *calls: CommandCall, io: ProgressIO | None = None, host: str = "hv-a1") -> ProgressIO:
    io = io or ProgressIO()
    statement = list(calls)
    statement[-1] = CommandCall(statement[-1].name, statement[-1].parameters, end_of_statement=True)
    HyperVEngine(fleet, host).run(Invocation(statement), io)
    return io


def full_progress() -> list[tuple[str, str, int, bool]]:
    return [(ACTIVITY, f"{p}%", p, False) for p in range(10, 101, 10)] + [(ACTIVITY, "100%", 100, True)]


@pytest.mark.parametrize("calls", [
    [cmd("Export-VMSnapshot", Name=["before-update"], Path="D:\\Exports", VMName=["web01"])],
    [cmd("Get-VM", Name=["web01"]), cmd("Export-VMSnapshot", Name=["before-update"], Path="D:\\Exports")],
    [cmd("Get-VMSnapshot", VMName=["web01"], Name="before-update"), cmd("Export-VMSnapshot", Path="D:\\Exports")],
], ids=["SnapshotName", "VMObject", "SnapshotObject"])
def test_three_parameter_sets_export_with_progress(fleet: Fleet, calls: list[CommandCall]) -> None:
    io = export(fleet, *calls)
    assert io.failed is None and not io.errors and not io.out  # no output without -Passthru
    assert io.records == full_progress()
    (record,) = fleet.exports
    assert (record.vm, record.checkpoint, record.path, record.status, record.percent) == (
        "web01", "before-update", "D:\\Exports", "Completed", 100)
    assert fleet.vm("hv-a1", "web01").secondary_status is None


def test_passthru_writes_the_snapshot_and_steps_are_configurable(fleet: Fleet) -> None:
    fleet.apply_control("export_timing", {"steps": 4})
    io = export(fleet, cmd("Export-VMSnapshot", Name=["baseline"], Path="\\\\nas\\exports", VMName=["web01"],
                           Passthru=None))
    assert [r[2] for r in io.records] == [25, 50, 75, 100, 100]
    assert [wire(o).Name for o in io.out] == ["baseline"]


def test_vm_shows_exporting_while_it_runs(fleet: Fleet) -> None:
    seen: list[list[str]] = []

    def look(_: ProgressIO) -> None:
        vm = run(HyperVEngine(fleet, "hv-a1"), cmd("Get-VM", Name=["web01"])).out[0]
        seen.append([str(s) for s in wire(vm).OperationalStatus])

    export(fleet, cmd("Export-VMSnapshot", Name=["baseline"], Path="D:\\x", VMName=["web01"]), io=ProgressIO(look))
    assert seen[0] == ["Ok", "ExportingVirtualMachine"] and len(seen) == 11
    assert [str(s) for s in wire(run(HyperVEngine(fleet, "hv-a1"), cmd("Get-VM", Name=["web01"])).out[0])
            .OperationalStatus] == ["Ok"]


def test_stop_signal_ends_the_export(fleet: Fleet) -> None:
    def stop_after_three(io: ProgressIO) -> None:
        if len(io.records) == 3:
            io.stopping = True

    io = export(fleet, cmd("Export-VMSnapshot", Name=["baseline"], Path="D:\\x", VMName=["web01"]),
                io=ProgressIO(stop_after_three))
    assert [r[2] for r in io.records] == [10, 20, 30]  # no Completed record
    assert (fleet.exports[0].status, fleet.exports[0].percent) == ("Cancelled", 30)
    assert fleet.vm("hv-a1", "web01").secondary_status is None


def test_replica_recovery_points_are_refused(fleet: Fleet) -> None:
    io = export(fleet, cmd("Get-VMSnapshot", VMName=["fw01"]), cmd("Export-VMSnapshot", Path="D:\\x"), host="hv-b1")
    assert io.errors and not io.records and not fleet.exports
    err = wire(io.errors[0])
    assert "Replica recovery point" in str(err) and err.FullyQualifiedErrorId.startswith("InvalidOperation,")


def test_unknown_checkpoint_name_is_an_error(fleet: Fleet) -> None:
    io = export(fleet, cmd("Export-VMSnapshot", Name=["nope"], Path="D:\\x", VMName=["web01"]))
    assert 'checkpoint with name "nope"' in str(wire(io.errors[0])) and not fleet.exports


def test_injected_failure_after_some_progress_then_the_next_call_works(fleet: Fleet) -> None:
    fleet.apply_control("fail_next", {"host": "hv-a1", "vm": "web01", "cmdlet": "Export-VMSnapshot",
                                      "after_steps": 4})
    call = cmd("Export-VMSnapshot", Name=["baseline"], Path="D:\\x", VMName=["web01"])
    io = export(fleet, call)
    assert [r[2] for r in io.records] == [10, 20, 30, 40]
    assert io.failed is None and len(io.errors) == 1  # non-terminating (§5.4)
    err = wire(io.errors[0])
    assert "Failed to export checkpoint 'baseline'" in str(err) and "(0x80070070)" in str(err)
    assert err.FullyQualifiedErrorId.startswith("OperationFailed,")
    assert (fleet.exports[0].status, fleet.exports[0].error) == ("Failed", str(err))
    assert export(fleet, call).records == full_progress() and fleet.exports[1].status == "Completed"


def test_injected_failure_with_error_action_stop_fails_the_pipeline(fleet: Fleet) -> None:
    fleet.apply_control("fail_next", {"host": "hv-a1", "cmdlet": "Export-VMSnapshot", "message": "disk on fire"})
    io = export(fleet, cmd("Export-VMSnapshot", Name=["baseline"], Path="D:\\x", VMName=["web01"],
                           ErrorAction="Stop"))
    assert io.failed is not None and "disk on fire" in str(wire(io.failed)) and not io.records
    assert fleet.exports[0].status == "Failed" and fleet.vm("hv-a1", "web01").secondary_status is None


def test_checkpoint_vm_default_name_type_and_parent(fleet: Fleet) -> None:
    a1 = HyperVEngine(fleet, "hv-a1")
    vm = fleet.vm("hv-a1", "web01")
    before = vm.current_checkpoint()
    io = run(a1, cmd("Checkpoint-VM", Name=["web01"], Passthru=None))
    snap = wire(io.out[0])
    assert snap.Name == "web01 - (06/02/2025 - 02:05:09 PM)" and str(snap.SnapshotType) == "Standard"
    assert snap.CreationTime == T0 and before is not None and snap.ParentSnapshotName == before.name
    assert not run(a1, cmd("Checkpoint-VM", Name=["web01"], SnapshotName="pre-backup")).out
    assert vm.checkpoints[-1].name == "pre-backup" and vm.checkpoints[-1].parent_id == vm.checkpoints[-2].id
    exported = export(fleet, cmd("Export-VMSnapshot", Name=["pre-backup"], Path="D:\\x", VMName=["web01"]))
    assert exported.records == full_progress()


