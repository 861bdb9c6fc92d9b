"""Checkpoint export through pypsrp polling against the lab: paced progress, cancel, injected failure,
Replica recovery points refused. The lab clock is frozen and moved one second per poll by the test, and the
throttle reads the same clock, so pacing does not depend on the machine's speed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jobs.backup.export import ExportError, export_checkpoint
from jobs.backup.export_progress import ExportPathError, ReplicaRecoveryPointError
from jobs.hyperv.fleet import Fleet
from jobs.hyperv.hosts import load_inventory
from lab.fleet import Lab
from lab.fleet_file import default_fleet


class Driver:
    """Advances the lab clock 1 s per poll; `clock` is the same time for the throttle."""

    def __init__(self, lab: Lab, cancel_at: float | None = None) -> None:
        self.lab, self.t, self.cancel_at = lab, 0.0, cancel_at
        self.updates: list[tuple[float, str]] = []

    def clock(self) -> float:
        return self.t

    def cancelled(self) -> bool:
        if self.cancel_at is not None and self.t >= self.cancel_at:
            return True
        if self.lab.fleet.exports and self.lab.fleet.exports[-1].status == "Running":
            self.lab.fleet.apply_control("clock", {"advance_s": 1})
            self.t += 1
        return False

    def update(self, text: str) -> None:
        self.updates.append((self.t, text))


@pytest.fixture
def lab(make_lab: Callable[..., Lab]) -> Lab:
    running = make_lab(fleet=default_fleet())
    running.fleet.apply_control("clock", {"freeze": True})
    running.fleet.apply_control("export_timing", {"seconds": 10, "steps": 10})
    return running


@pytest.fixture
def fleet(lab: Lab, tmp_path: Path) -> Iterator[Fleet]:
    with Fleet(load_inventory(lab.write_inventory(tmp_path / "inv.yml"))) as f:
        yield f


def run(fleet: Fleet, d: Driver, checkpoint: str = "baseline", vm: str = "web01", path: str = "D:\\Exports") -> object:
    return export_checkpoint(fleet, vm, checkpoint, path, update=d.update, cancelled=d.cancelled, update_s=3,
                             deadline_s=120, clock=d.clock)


def test_ten_step_export_paced_updates(lab: Lab, fleet: Fleet) -> None:
    d = Driver(lab)
    outcome = run(fleet, d)
    assert not outcome.cancelled and outcome.path == "D:\\Exports"  # type: ignore[attr-defined]
    assert "Exported web01 / baseline to D:\\Exports" in outcome.summary()  # type: ignore[attr-defined]
    assert len(d.updates) >= 3, d.updates
    times = [t for t, _ in d.updates[:-1]]
    assert all(b - a >= 3 for a, b in zip(times, times[1:])), d.updates  # paced as configured
    assert d.updates[-1][1].startswith("[" + "█" * 20 + "] 100%")
    assert lab.fleet.exports[-1].status == "Completed"


def test_cancel_stops_the_export(lab: Lab, fleet: Fleet) -> None:
    outcome = run(fleet, Driver(lab, cancel_at=4))
    assert outcome.cancelled  # type: ignore[attr-defined]
    from tests.support.fixtures_redis import wait_until

    wait_until(lambda: lab.fleet.exports[-1].status == "Cancelled", 30, "the lab to stop the export")
    assert lab.fleet.exports[-1].percent < 100


def test_injected_failure_reports_the_powershell_error(lab: Lab, fleet: Fleet) -> None:
    lab.fleet.apply_control("fail_next", {"host": "hv-a1", "cmdlet": "Export-VMSnapshot", "after_steps": 3})
    with pytest.raises(ExportError, match="There is not enough space on the disk"):
        run(fleet, Driver(lab))


def test_refusals_before_anything_runs(lab: Lab, fleet: Fleet) -> None:
    with pytest.raises(ExportPathError):
        run(fleet, Driver(lab), path="Exports/x")
    replica_point = next(cp.name for cp in lab.fleet.vm("hv-b1", "fw01").checkpoints)
    # fw01's export would run on its primary; the Replica VM's recovery points are refused by type (§1.2)
    with pytest.raises(ReplicaRecoveryPointError, match="Replica recovery point"):
        _export_replica(fleet, replica_point)
    assert lab.fleet.exports == []


def _export_replica(fleet: Fleet, checkpoint: str) -> None:
    from jobs.backup.export import refuse_replica_point, snapshot_type

    refuse_replica_point(checkpoint, snapshot_type(fleet, "hv-b1", "fw01", checkpoint))
