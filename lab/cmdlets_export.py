"""Export-VMSnapshot (hyperv.md §1.2): progress records over a configurable time, stop-aware, injectable failure.

The handler checks and records under the fleet lock, then hands the long part to ``ctx.defer`` so the
export runs *outside* the lock (other pipelines go on meanwhile). Progress follows the decompiled module:
activity "Export a virtual machine snapshot" (TaskDescriptions.resx), status "<n>%", PercentComplete n, a
final Completed record [DECOMP VirtualizationCmdletBase]. While it runs the VM shows OperationalStatus
``ExportingVirtualMachine`` (§1.2 item 3). Duration and step count are ``Fleet.export_seconds`` /
``Fleet.export_steps`` (control action ``export_timing``), measured on the fleet clock. Error texts are UNCONFIRMED (no reference quotes
them); refusing Replica-type recovery points is an inference of §1.2.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable

from lab.binding import Bound
from lab.cmdlet_context import Context, HandlerTable
from lab.cmdlets_read import matches, vms_from
from lab.errors import hyperv_error
from lab.hvobjects import Live
from lab.model import VM, Checkpoint, ExportRecord, Injection
from lab.replication import RECOVERY_TYPES

ACTIVITY = "Export a virtual machine snapshot"
REPLICA_REFUSED = ("Cannot export checkpoint '{0}' of virtual machine '{1}': it is a Replica recovery point, "
                   "kept as an undo log that virtual machine export does not carry.")
NOT_FOUND = 'Hyper-V was unable to find a checkpoint with name "{0}" for virtual machine "{1}".'
EXPORT_FAILED = ("Failed to export checkpoint '{0}' of virtual machine '{1}' to '{2}': There is not enough space "
                 "on the disk. (0x80070070)")
SLICE = 0.02  # seconds between looks at the stop signal


def _named(ctx: Context, vms: list[VM], names: list[str]) -> list[tuple[VM, Checkpoint]]:
    pairs: list[tuple[VM, Checkpoint]] = []
    for vm in vms:
        for pattern in names:
            found = [cp for cp in vm.checkpoints if matches(pattern, cp.name)]
            if not found:
                ctx.error(hyperv_error(ctx.cmdlet, NOT_FOUND.format(pattern, vm.name), target=pattern,
                                       error_id="InvalidParameter"))
            pairs.extend((vm, cp) for cp in found if (vm, cp) not in pairs)
    return pairs


def _snapshots(ctx: Context, bound: Bound) -> list[tuple[VM, Checkpoint]]:
    if bound.parameter_set == "SnapshotObject":
        return [(live.vm, live.item) for live in bound.get("VMSnapshot")]
    return _named(ctx, vms_from(ctx, bound), list(bound.get("Name")))


def export_snapshot(ctx: Context, bound: Bound, _: Any) -> list[Any]:
    if bound.get("AsJob"):
        ctx.error(hyperv_error(ctx.cmdlet, "The lab does not model -AsJob; run Export-VMSnapshot synchronously.",
                               "NotImplemented"))
        return []
    path = str(bound.get("Path"))
    for vm, cp in _snapshots(ctx, bound):
        if bound.get("WhatIf"):
            continue
        if cp.type in RECOVERY_TYPES:
            ctx.error(hyperv_error(ctx.cmdlet, REPLICA_REFUSED.format(cp.name, vm.name), "InvalidOperation",
                                   target=cp.name))
            continue
        record = ExportRecord(ctx.host.name, vm.name, cp.name, cp.id, path, ctx.fleet.clock())
        ctx.fleet.exports.append(record)
        injection = ctx.fleet.take_injection(ctx.cmdlet, ctx.host.name, vm.name)
        ctx.defer(_runner(ctx, vm, cp, record, injection, bool(bound.get("Passthru"))))
    return []


def _runner(ctx: Context, vm: VM, cp: Checkpoint, record: ExportRecord, injection: Injection | None,
            passthru: bool) -> Callable[[], list[Any]]:
    def run() -> list[Any]:
        with ctx.fleet.lock:
            seconds, steps = ctx.fleet.export_seconds, max(1, ctx.fleet.export_steps)
            vm.secondary_status = "ExportingVirtualMachine"
        try:
            record.status = _progress(ctx, record, seconds, steps, injection)
        finally:
            with ctx.fleet.lock:
                vm.secondary_status = None
                record.finished = ctx.fleet.clock()
                if record.status == "Running":  # an exception (e.g. -ErrorAction Stop) ended it
                    record.status = "Failed"
        if record.status == "Completed" and passthru:
            with ctx.fleet.lock:
                return [Live("VMSnapshot", ctx.host, vm, cp)]
        return []

    return run


def _progress(ctx: Context, record: ExportRecord, seconds: float, steps: int, injection: Injection | None) -> str:
    """Write the progress records; returns the final status (Completed, Cancelled, Failed)."""
    for step in range(steps + 1):
        if injection is not None and step == min(injection.after_steps, steps):
            message = injection.message or EXPORT_FAILED.format(record.checkpoint, record.vm, record.path)
            record.error = message
            record.status = "Failed"
            ctx.error(hyperv_error(ctx.cmdlet, message, injection.category or "WriteError", target=record.checkpoint,
                                   error_id="OperationFailed"))
            return "Failed"
        if step == steps:
            break
        if not _wait_until(ctx, record.started + timedelta(seconds=seconds * (step + 1) / steps)):
            return "Cancelled"
        percent = (step + 1) * 100 // steps
        record.percent = percent
        ctx.io.progress(ACTIVITY, f"{percent}%", percent)
    ctx.io.progress(ACTIVITY, "100%", 100, completed=True)
    return "Completed"


def _wait_until(ctx: Context, deadline: datetime) -> bool:
    """Wait until ``deadline`` on the fleet clock unless the client stops the pipeline; False when it did.

    Steps are scheduled from the export's start, so with a frozen clock (``clock`` control action) a step
    is released exactly when a test moves the clock past it, whatever the machine's speed."""
    while ctx.fleet.clock() < deadline:
        if ctx.io.wait_stopping(SLICE):
            return False
    return not ctx.io.stopping


HANDLERS: HandlerTable = {
    "Export-VMSnapshot": (export_snapshot, "VMSnapshot"),
}
