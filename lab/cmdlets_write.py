"""Mutating Hyper-V cmdlets on the model (hyperv.md §1.3–1.8, §1.11): VM power, failover, replication,
teaming, checkpoints. Replica transitions live in ``lab.replication``; refusals become non-terminating
Hyper-V error records. ``-WhatIf`` changes nothing; output only with ``-Passthru`` (or ``-AsTest``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from lab import replication as rp
from lab.binding import Bound
from lab.cmdlet_context import Context, Handler, HandlerTable, Terminate
from lab.cmdlets_read import matches, select_vms, vms_from
from lab.errors import hyperv_error, prompt_failed
from lab.hvobjects import Live
from lab.model import VM, Checkpoint

FREQUENCIES = (30, 300, 900)


def _targets(ctx: Context, bound: Bound, name_param: str) -> list[VM]:
    if bound.get("VMReplication") is not None:
        return [live.vm for live in bound.get("VMReplication")]
    return vms_from(ctx, bound, name_param)


def _each(name_param: str, action: Callable[[Context, Bound, VM], list[Any] | None]) -> Handler:
    """Run ``action`` per target VM; a refused transition is a non-terminating error for that VM."""

    def handler(ctx: Context, bound: Bound, _: Any) -> list[Any]:
        out: list[Any] = []
        for vm in _targets(ctx, bound, name_param):
            if bound.get("WhatIf"):
                continue
            try:
                produced = action(ctx, bound, vm)
            except rp.ReplicationError as exc:
                ctx.error(hyperv_error(ctx.cmdlet, exc.message, exc.category, target=vm.name))
                continue
            if produced:
                out.extend(produced)
            elif bound.get("Passthru"):
                out.append(Live("VirtualMachine", ctx.host, vm))
        return out

    return handler


def _start_vm(ctx: Context, bound: Bound, vm: VM) -> None:
    rep = vm.replication
    if vm.state == "Running":
        ctx.warning(f"The virtual machine '{vm.name}' is already in the specified state.")
        return
    if rep is not None and (rep.mode in ("Replica", "ExtendedReplica")
                            and rep.state not in ("FailedOverWaitingCompletion", "FailedOver")
                            or rep.state == "PreparedForFailover"):
        raise rp.ReplicationError(rp.replication_state_text(vm))
    vm.state, vm.started_at, vm.cpu_usage = "Running", ctx.fleet.clock(), 3


def _stop_vm(ctx: Context, bound: Bound, vm: VM) -> None:
    if bound.get("Save") and bound.get("TurnOff"):
        raise rp.ReplicationError("The Save and TurnOff parameters cannot be used together.", "InvalidArgument")
    target = "Saved" if bound.get("Save") else "Off"
    if vm.state == target or (vm.state == "Off" and target == "Saved"):
        ctx.warning(f"The virtual machine '{vm.name}' is already in the specified state.")
        return
    answered = bound.get("Force") or bound.get("AsJob") or bound.get("TurnOff") or bound.get("Save")
    if target == "Off" and vm.running and not answered and vm.shutdown_status(ctx.fleet.clock()) != "Ok":
        # Stop-VM asks (ShouldContinue, which -Confirm:$false does not answer) whether to turn the VM off when
        # the guest cannot shut down; a remote session has no one to answer (hyperv.md §1 Stop-VM).
        raise Terminate(prompt_failed(ctx.cmdlet))
    vm.state, vm.started_at, vm.broken = target, None, False


FAILOVER_FAILED = "Hyper-V failed to fail over virtual machine '{0}': the operation failed. (0x80004005)"  # UNCONFIRMED


def _start_failover(ctx: Context, bound: Bound, vm: VM) -> list[Any] | None:
    injection = ctx.fleet.take_injection(ctx.cmdlet, ctx.host.name, vm.name)
    if injection is not None:  # control action fail_next: a realistic failure, state unchanged
        raise rp.ReplicationError(injection.message or FAILOVER_FAILED.format(vm.name),
                                  injection.category or "InvalidOperation")
    point = bound.get("VMRecoverySnapshot")
    point_id = point.item.id if point is not None else None
    if bound.get("Prepare"):
        rp.prepare_failover(ctx.fleet, ctx.host, vm)
        return None
    if bound.get("AsTest"):
        test_vm = rp.test_failover(ctx.fleet, ctx.host, vm, point_id)
        return [Live("VirtualMachine", ctx.host, test_vm)]  # -AsTest always writes the test VM (§1.5)
    rp.failover(ctx.fleet, ctx.host, vm, point_id)
    return None


def _failover_targets(ctx: Context, bound: Bound, _: Any) -> list[Any]:
    point = bound.get("VMRecoverySnapshot")
    if point is not None:
        bound.params["VM"] = [Live("VirtualMachine", ctx.host, point.vm)]
    return _each("VMName", _start_failover)(ctx, bound, None)


def _set_replication(ctx: Context, bound: Bound, vm: VM) -> list[Any] | None:
    if bound.get("Reverse"):
        rp.reverse(ctx.fleet, ctx.host, vm, bound.get("ReplicaServerName"))
    elif bound.get("AsReplica"):
        rp.as_replica(ctx.fleet, ctx.host, vm)
    rep = vm.replication
    if rep is None:
        raise rp.ReplicationError(f"Replication is not enabled for virtual machine '{vm.name}'.")
    frequency = bound.get("ReplicationFrequencySec")
    if frequency is not None:
        if frequency not in FREQUENCIES:
            raise rp.ReplicationError("The replication frequency must be 30, 300 or 900 seconds.", "InvalidArgument")
        rep.frequency_sec = frequency
    if bound.get("RecoveryHistory") is not None:
        rep.recovery_history = bound.get("RecoveryHistory")
    if bound.get("ReplicaServerName") and not bound.get("Reverse"):
        rep.replica_server = bound.get("ReplicaServerName")
    return [Live("VMReplication", ctx.host, vm)] if bound.get("Passthru") else []


RESUME_FAILED = ("Hyper-V failed to resume replication for virtual machine '{0}': the connection with the server "
                 "'{1}' could not be established. (0x80072EFD)")  # UNCONFIRMED wording


def _resume(ctx: Context, vm: VM) -> None:
    injection = ctx.fleet.take_injection(ctx.cmdlet, ctx.host.name, vm.name)
    if injection is not None:  # control action fail_next: a realistic failure, state unchanged
        rep = vm.replication
        other = ctx.host.fqdn if rep is None else (
            rep.primary_server if rep.replica_server.lower() == ctx.host.fqdn.lower() else rep.replica_server)
        raise rp.ReplicationError(injection.message or RESUME_FAILED.format(vm.name, other),
                                  injection.category or "ConnectionError")


def _simple(action: Callable[..., None], passthru_kind: str = "VMReplication") -> Callable[..., list[Any] | None]:
    def run(ctx: Context, bound: Bound, vm: VM) -> list[Any] | None:
        action(ctx.fleet, ctx.host, vm)
        return [Live(passthru_kind, ctx.host, vm)] if bound.get("Passthru") else []
    return run


def _on_relationship(action: Callable[..., None]) -> Callable[..., list[Any] | None]:
    """Suspend/Resume/Reset act on the relationship -ReplicationRelationshipType names (Simple without it)."""
    def run(ctx: Context, bound: Bound, vm: VM) -> list[Any] | None:
        relationship = bound.get("ReplicationRelationshipType")
        if action is rp.resume:
            _resume(ctx, vm)
            rp.resume(ctx.fleet, ctx.host, vm, bool(bound.get("Resynchronize")), relationship)
        else:
            action(ctx.fleet, ctx.host, vm, relationship)
        rep = vm.extended if relationship == "Extended" else vm.replication
        return [Live("VMReplication", ctx.host, vm, rep)] if bound.get("Passthru") else []
    return run


def _set_adapter(ctx: Context, bound: Bound, _: Any) -> list[Any]:
    if bound.get("VMNetworkAdapter") is not None:
        pairs = [(bound.get("VMNetworkAdapter").vm, bound.get("VMNetworkAdapter").item)]
    else:
        vm_name = bound.get("VMName")
        vms = [bound.get("VM").vm] if bound.get("VM") is not None else select_vms(ctx, [vm_name] if vm_name else None)
        pairs = [(vm, a) for vm in vms for a in vm.adapters if bound.get("Name") is None or matches(bound.get("Name"),
                                                                                                   a.name)]
    out: list[Any] = []
    for vm, adapter in pairs:
        if bound.get("AllowTeaming") is not None and not bound.get("WhatIf"):
            adapter.allow_teaming = bound.get("AllowTeaming")
        if bound.get("Passthru"):
            out.append(Live("VMNetworkAdapter", ctx.host, vm, adapter))
    return out


def _checkpoint(ctx: Context, bound: Bound, vm: VM) -> list[Any] | None:
    now = ctx.fleet.clock()
    name = bound.get("SnapshotName") or f"{vm.name} - ({now:%m/%d/%Y - %I:%M:%S %p})"
    current = vm.current_checkpoint()
    cp = Checkpoint(id=uuid.uuid4(), name=name, type="Standard", creation_time=now,
                    parent_id=current.id if current else None)
    vm.checkpoints.append(cp)
    return [Live("VMSnapshot", ctx.host, vm, cp)] if bound.get("Passthru") else []


HANDLERS: HandlerTable = {
    "Start-VM": (_each("Name", _start_vm), "VirtualMachine"),
    "Stop-VM": (_each("Name", _stop_vm), "VirtualMachine"),
    "Start-VMFailover": (_failover_targets, "VirtualMachine"),
    "Stop-VMFailover": (_each("VMName", lambda c, b, vm: rp.stop_failover(c.fleet, c.host, vm)), "VirtualMachine"),
    "Complete-VMFailover": (_each("VMName", lambda c, b, vm: rp.complete_failover(c.fleet, c.host, vm)),
                            "VirtualMachine"),
    "Set-VMReplication": (_each("VMName", _set_replication), "VMReplication"),
    "Start-VMInitialReplication": (_each("VMName", _simple(rp.start_initial_replication)), "VMReplication"),
    "Suspend-VMReplication": (_each("VMName", _on_relationship(rp.suspend)), "VMReplication"),
    "Resume-VMReplication": (_each("VMName", _on_relationship(rp.resume)), "VMReplication"),
    "Reset-VMReplicationStatistics": (_each("VMName", _on_relationship(rp.reset_statistics)), "VMReplication"),
    "Set-VMNetworkAdapter": (_set_adapter, "VMNetworkAdapter"),
    "Checkpoint-VM": (_each("Name", _checkpoint), "VMSnapshot"),
}
