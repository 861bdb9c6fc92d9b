"""Backup and export behaviour of the lab through the real pypsrp client over HTTP: Export-VMSnapshot progress while polling,
stop, injected failures, and the log-apply window as Get-/Measure-VMReplication show it.

The lab's clock is frozen (``clock`` control action) and moved by the test, so each export step and each
apply window happens when the test says, not when the machine gets round to it."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from pypsrp.complex_objects import PSInvocationState
from pypsrp.powershell import PowerShell, RunspacePool

from lab.fleet import Lab
from lab.fleet_file import default_fleet
from tests.support.fixtures_lab import lab_wsman
from tests.support.fixtures_redis import wait_until

ACTIVITY = "Export a virtual machine snapshot"
EXPORT = {"VMName": "web01", "Name": "baseline", "Path": "D:\\Exports"}


@pytest.fixture
def frozen_lab(make_lab: Callable[..., Lab]) -> Lab:
    lab = make_lab(fleet=default_fleet())
    lab.fleet.apply_control("clock", {"freeze": True})
    lab.fleet.apply_control("export_timing", {"seconds": 10, "steps": 10})
    return lab


def poll_until(ps: PowerShell, predicate: Callable[[], bool], what: str) -> None:
    """poll_invoke (1 s Receive timeout) until ``predicate`` holds, with an overall deadline."""

    def once() -> bool:
        if predicate():
            return True
        if ps.state == PSInvocationState.RUNNING:
            ps.poll_invoke(timeout=1)
        return predicate()

    wait_until(once, 60, what)


def progress(ps: PowerShell) -> list[tuple[str, str, int, Any]]:
    return [(p.activity, p.description, p.percent_complete, p.progress_type) for p in ps.streams.progress]


def test_export_progress_arrives_step_by_step_while_polling(frozen_lab: Lab) -> None:
    with RunspacePool(lab_wsman(frozen_lab, "hv-a1")) as pool:
        ps = PowerShell(pool).add_cmdlet("Export-VMSnapshot").add_parameters(EXPORT)
        ps.begin_invoke()
        wait_until(lambda: frozen_lab.fleet.exports, 30, "the export to start")  # steps count from its start
        for step in range(1, 11):
            frozen_lab.fleet.apply_control("clock", {"advance_s": 1})
            poll_until(ps, lambda: len(ps.streams.progress) >= step, f"progress record {step}")
            if step < 10:
                assert ps.state == PSInvocationState.RUNNING and len(ps.streams.progress) == step
        poll_until(ps, lambda: ps.state != PSInvocationState.RUNNING, "the export to finish")
        ps.end_invoke()
    records = progress(ps)
    assert [r[:3] for r in records] == [(ACTIVITY, f"{n}%", n) for n in range(10, 101, 10)] + [(ACTIVITY, "100%", 100)]
    assert str(records[-1][3]) != str(records[0][3])  # the last one is the Completed record
    assert ps.state == PSInvocationState.COMPLETED and not ps.had_errors and not ps.streams.error
    assert [(e.vm, e.checkpoint, e.status) for e in frozen_lab.fleet.exports] == [("web01", "baseline", "Completed")]


def test_stop_ends_a_running_export(frozen_lab: Lab) -> None:
    with RunspacePool(lab_wsman(frozen_lab, "hv-a1")) as pool:
        ps = PowerShell(pool).add_cmdlet("Export-VMSnapshot").add_parameters(EXPORT)
        ps.begin_invoke()
        wait_until(lambda: frozen_lab.fleet.exports, 30, "the export to start")
        for step in (1, 2, 3):
            frozen_lab.fleet.apply_control("clock", {"advance_s": 1})
            poll_until(ps, lambda: len(ps.streams.progress) >= step, f"progress record {step}")
        ps.stop()
    wait_until(lambda: frozen_lab.fleet.exports[0].status == "Cancelled", 30, "the lab to cancel the export")
    assert frozen_lab.fleet.exports[0].percent == 30
    assert frozen_lab.fleet.vm("hv-a1", "web01").secondary_status is None


def test_injected_export_failure_is_reported_as_a_powershell_error(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(fleet=default_fleet())
    lab.fleet.apply_control("export_timing", {"seconds": 0, "steps": 10})
    lab.fleet.apply_control("fail_next", {"host": "hv-a1", "cmdlet": "Export-VMSnapshot", "after_steps": 3})
    with RunspacePool(lab_wsman(lab, "hv-a1")) as pool:
        ps = PowerShell(pool).add_cmdlet("Export-VMSnapshot").add_parameters(EXPORT)
        ps.invoke()
        assert [p.percent_complete for p in ps.streams.progress] == [10, 20, 30]
        (error,) = ps.streams.error
        assert "Failed to export checkpoint 'baseline' of virtual machine 'web01'" in str(error)
        assert error.fq_error.startswith("OperationFailed,") and not ps.had_errors  # non-terminating
        again = PowerShell(pool).add_cmdlet("Export-VMSnapshot").add_parameters(EXPORT)
        again.invoke()
        assert not again.streams.error and len(again.streams.progress) == 11


def test_replica_points_refused_and_resume_failure_injected(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(fleet=default_fleet())
    with RunspacePool(lab_wsman(lab, "hv-b1")) as pool:
        ps = PowerShell(pool).add_cmdlet("Get-VMSnapshot").add_parameter("VMName", "fw01")
        ps.add_cmdlet("Export-VMSnapshot").add_parameter("Path", "D:\\x").add_parameter("ErrorAction", "Stop")
        ps.invoke()
        assert ps.had_errors and "Replica recovery point" in str(ps.streams.error[0])
        PowerShell(pool).add_cmdlet("Suspend-VMReplication").add_parameter("VMName", "fw01").invoke()
        lab.fleet.apply_control("fail_next", {"host": "hv-b1", "vm": "fw01", "cmdlet": "Resume-VMReplication"})
        resume = PowerShell(pool).add_cmdlet("Resume-VMReplication").add_parameter("VMName", "fw01")
        resume.invoke()
        assert "failed to resume replication for virtual machine 'fw01'" in str(resume.streams.error[0])
        state = PowerShell(pool).add_cmdlet("Get-VMReplication").add_parameter("VMName", "fw01").invoke()[0]
        assert str(state.adapted_properties["ReplicationState"]) == "Suspended"


def test_log_apply_window_as_the_replica_host_reports_it(frozen_lab: Lab) -> None:
    frozen_lab.fleet.apply_control("backup_condition", {"host": "hv-b1", "vm": "fw01", "condition": "log_apply",
                                                        "apply_seconds": 5})

    def measure() -> dict[str, Any]:
        with RunspacePool(lab_wsman(frozen_lab, "hv-b1")) as pool:
            obj = PowerShell(pool).add_cmdlet("Measure-VMReplication").add_parameter("VMName", "fw01").invoke()[0]
        return dict(obj.adapted_properties)

    during = measure()
    assert during["LastReplicationTime"] > during["LastAppliedLogTime"]  # same ISO format: text order is time order
    assert during["CurrentTask"] == ["Microsoft.HyperV.PowerShell.VMCurrentTask"]
    frozen_lab.fleet.apply_control("clock", {"advance_s": 5})
    after = measure()
    assert after["LastReplicationTime"] == after["LastAppliedLogTime"] and not after["CurrentTask"]
    frozen_lab.fleet.apply_control("clock", {"advance_s": 25})  # fw01 replicates every 30 s
    assert measure()["CurrentTask"] == ["Microsoft.HyperV.PowerShell.VMCurrentTask"]
