"""Checkpoint export (Export-VMSnapshot, hyperv.md §1.2) with live progress and cancel.

The path is validated and Replica recovery points are refused before anything is sent; the export runs as
one watched pipeline (``HostSession.run_watched``): after each poll the newest progress record is rendered,
and `ProgressThrottle` lets at most one update through every `update_s` seconds (first and final always).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobs.backup.export_progress import (
    ProgressThrottle,
    format_duration,
    latest_progress,
    refuse_replica_point,
    render_progress,
    validate_export_path,
)
from jobs.hyperv.commands import Pipeline, single
from jobs.hyperv.errors import HyperVError
from jobs.hyperv.fleet import Fleet
from jobs.hyperv.records import enum_name, prop
from jobs.hyperv.session import WatchStopped


class ExportError(Exception):
    """One clear sentence (a PowerShell error keeps its text)."""


@dataclass(frozen=True)
class ExportOutcome:
    vm: str
    checkpoint: str
    path: str
    host: str
    seconds: float
    cancelled: bool

    def summary(self) -> str:
        if self.cancelled:
            return f"Export of {self.vm} / {self.checkpoint} cancelled after {format_duration(self.seconds)}."
        return (f"Exported {self.vm} / {self.checkpoint} to {self.path} on {self.host} "
                f"in {format_duration(self.seconds)}.")


def owner_host(fleet: Fleet, vm: str) -> str:
    """The host that runs `vm` (a primary or an unreplicated VM; a Replica VM only when nothing else has it)."""
    found = fleet.find_vm(vm)
    hits = [loc for locs in found.results.values() for loc in locs]
    if not hits:
        raise ExportError(f"no VM named {vm} on the hosts that answered")
    hits.sort(key=lambda loc: loc.replication_mode in ("Replica", "ExtendedReplica"))
    return hits[0].host


def snapshot_query(vm: str, checkpoint: str) -> Pipeline:
    """Get-VMSnapshot -VMName <vm> -Name <checkpoint>: -VMName is a String[], but -Name is one String, and a
    real host refuses a list there (CannotConvertArgument)."""
    return single("Get-VMSnapshot", VMName=[vm], Name=checkpoint)


def export_pipeline(vm: str, checkpoint: str, target: str) -> Pipeline:
    """Export-VMSnapshot's -VMName and -Name are both String[]; -Path is one String."""
    return single("Export-VMSnapshot", VMName=[vm], Name=[checkpoint], Path=target)


def snapshot_type(fleet: Fleet, host: str, vm: str, checkpoint: str) -> str:
    try:
        objects = fleet.session(host).run(snapshot_query(vm, checkpoint))
    except HyperVError as err:
        raise ExportError(err.message) from None
    if len(objects) != 1:
        raise ExportError(f"{vm} has {len(objects)} checkpoints named {checkpoint!r}; exactly one is needed")
    return enum_name(prop(objects[0], "SnapshotType")) or ""


def export_checkpoint(fleet: Fleet, vm: str, checkpoint: str, path: str, *, update: Callable[[str], None],
                      cancelled: Callable[[], bool], update_s: float, deadline_s: float,
                      clock: Callable[[], float] = time.monotonic) -> ExportOutcome:
    """Run the export; `update(text)` gets the throttled progress lines, `cancelled()` is asked after each poll."""
    target = validate_export_path(path)
    host = owner_host(fleet, vm)
    refuse_replica_point(checkpoint, snapshot_type(fleet, host, vm, checkpoint))
    throttle = ProgressThrottle(update_s)
    started = clock()

    seen: list[Any] = []

    def watch(records: list[Any]) -> bool:
        seen[:] = records
        text = render_progress(latest_progress(records))
        if throttle.should_send(clock(), text):
            update(text)
        return not cancelled()

    pipe = export_pipeline(vm, checkpoint, target)
    try:
        fleet.session(host).run_watched(pipe, watch, deadline_s=deadline_s)
    except WatchStopped:
        return ExportOutcome(vm, checkpoint, target, host, clock() - started, cancelled=True)
    except HyperVError as err:
        raise ExportError(err.message) from None
    final = render_progress(latest_progress(seen))
    if throttle.should_send(clock(), final, final=True):
        update(final)
    return ExportOutcome(vm, checkpoint, target, host, clock() - started, cancelled=False)
