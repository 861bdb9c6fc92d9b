"""Hyper-V Replica as a plain state machine on the fleet model (no I/O; tests drive it directly).

States, modes and health follow hyperv.md §1.3–1.8, §3.2 and §3.7. A transition that is not allowed raises
``ReplicationError`` carrying the Hyper-V message (texts from CmdletErrorMessages.resx as quoted in §1.3 and
§5.4). Callers hold ``fleet.lock``.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from lab import health, timeline
from lab.model import VM, Checkpoint, Fleet, Host, Replication

STATE_TEXT = "The operation cannot be performed while the virtual machine is in its current state."
RECOVERY_TYPES = ("Replica", "AppConsistentReplica", "SyncedReplica")


class ReplicationError(Exception):
    """A refused transition; ``category`` is the PowerShell ErrorCategory name to report."""

    def __init__(self, message: str, category: str = "InvalidOperation") -> None:
        super().__init__(message)
        self.message = message
        self.category = category


def replication_state_text(vm: VM) -> str:
    return f"The operation cannot be performed while the virtual machine '{vm.name}' is in the current replication state."


def _rep(vm: VM, relationship: str | None = None) -> Replication:
    """The relationship a cmdlet's -ReplicationRelationshipType names; without it the Simple one (UNKNOWN: what a
    host does without the parameter on a VM that extends replication; the lab never touches the Extended one)."""
    rep = vm.extended if relationship == "Extended" else vm.replication
    if rep is None:
        kind = "Extended replication" if relationship == "Extended" else "Replication"
        raise ReplicationError(f"{kind} is not enabled for virtual machine '{vm.name}'.")
    return rep


def _set(rep: Replication, state: str, health: str, *details: str) -> None:
    rep.state, rep.health, rep.health_details = state, health, list(details)


def _turn_off(vm: VM) -> None:
    vm.state, vm.started_at, vm.broken = "Off", None, False


# --- power and health ---------------------------------------------------------------------------------


def power_loss(fleet: Fleet, host: Host) -> dict[str, Any]:
    """Unclean power cut: running VMs stop; every relationship through this host goes Critical (§3.7)."""
    was_running = [vm.name for vm in host.vms if vm.running]
    host.powered = False
    host.was_running.update(vm.id for vm in host.vms if vm.running)
    for vm in host.vms:
        _turn_off(vm)
    critical = []
    for vm in host.vms:
        rep = vm.replication
        if rep is None or rep.mode == "TestReplica":
            continue
        critical.append(vm.name)
        text = f"Hyper-V cannot replicate changes for virtual machine '{vm.name}': the server is not reachable."
        partner = fleet.partner(host, vm)
        for side in [rep] + ([partner[1].replication] if partner and partner[1].replication else []):
            side.health, side.health_details = "Critical", [text]
            if side.mode == "Primary":
                side.state = "Error"
    return {"host": host.name, "vms_off": was_running, "relationships_critical": critical}


def recover(fleet: Fleet, host: Host, broken: list[str] | None = None) -> dict[str, Any]:
    """Power back: VMs that ran start again (StartIfRunning). A crashed primary needs resync (§7 triggers)."""
    host.powered = True
    restart = set(host.was_running)
    started = []
    for vm in host.vms:
        if vm.id in restart:
            vm.state, vm.started_at = "Running", fleet.clock()
            started.append(vm.name)
            if broken and vm.name in broken:
                vm.broken, vm.cpu_usage = True, 100
    host.was_running.clear()
    for vm in host.vms:
        rep = vm.replication
        if rep is not None and rep.mode == "Primary" and rep.state == "Error":
            text = f"Resynchronization is required for virtual machine '{vm.name}'."
            _set(rep, "WaitingForStartResynchronize", "Critical", text)
    return {"host": host.name, "started": started}


def mark_broken(fleet: Fleet, vm: VM, broken: bool) -> None:
    """Running but not working, like the firewall of the project story: heartbeat lost, CPU at 100%."""
    if broken and not vm.running:
        vm.state, vm.started_at = "Running", fleet.clock()
    vm.broken = broken
    vm.cpu_usage = 100 if broken else 3


# --- suspend / resume (§1.8) -----------------------------------------------------------------------------


def suspend(fleet: Fleet, host: Host, vm: VM, relationship: str | None = None) -> None:
    """Pause on either side (§1.8): the state of that side becomes Suspended; a resync pauses on both sides."""
    rep = _rep(vm, relationship)
    if rep.state not in ("Replicating", "Resynchronizing", "WaitingForInitialReplication"):
        raise ReplicationError(replication_state_text(vm))
    if rep.state == "Resynchronizing":
        timeline.suspend_resync(fleet, host, vm, fleet.clock())
    else:
        timeline.finish_apply(rep)
        rep.state = "Suspended"
    # Paused on the replica -> Critical; paused on the primary -> Warning [BLOG-H1].
    rep.health = "Critical" if rep.mode == "Replica" else "Warning"
    rep.health_details = [f"Replication is paused for virtual machine '{vm.name}'."]


RESUMABLE = ("Suspended", "WaitingForStartResynchronize", "ResynchronizeSuspended", "Error", "UpdateError")


def resume(fleet: Fleet, host: Host, vm: VM, resynchronize: bool = False, relationship: str | None = None) -> None:
    """Resume (§1.8): from Suspended/Error the changes made meanwhile are sent now (a log arrives and is
    applied); ``-Resynchronize`` starts a resync (required from WaitingForStartResynchronize); a paused
    resync continues where it stopped."""
    rep = _rep(vm, relationship)
    if rep.state not in RESUMABLE:
        raise ReplicationError(replication_state_text(vm))
    now = fleet.clock()
    if rep.state == "ResynchronizeSuspended":
        timeline.continue_resync(fleet, host, vm, now)
        return
    if resynchronize:
        timeline.start_resync(fleet, host, vm, now)
        return
    if rep.state == "WaitingForStartResynchronize":
        raise ReplicationError(replication_state_text(vm))
    _set(rep, "Replicating", "Normal")
    timeline.restart_cycles(rep, now, rep.last_applied_log_time)
    health.advance(rep, vm.name, now, host.monitoring_interval)  # the pause's missed cycles count at once
    partner = fleet.partner(host, vm, rep)
    if partner and partner[1].replication and partner[1].replication.mode in ("Primary", "Replica"):
        other = partner[1].replication
        if other.state in ("Replicating", "Suspended", "Error") or other.health == "Critical":
            _set(other, "Replicating", "Normal")
            timeline.restart_cycles(other, now, other.last_applied_log_time)
            health.advance(other, vm.name, now, partner[0].monitoring_interval)


def reset_statistics(fleet: Fleet, host: Host, vm: VM, relationship: str | None = None) -> None:
    """Reset-VMReplicationStatistics (hyperv.md §1.9); on a VM without replication the text of [BLOG-CLU]."""
    rep = vm.extended if relationship == "Extended" else vm.replication
    if rep is None:
        raise ReplicationError(f"'Reset-VMReplicationStatistics' is not applicable on virtual machine '{vm.name}'.")
    health.reset(rep, fleet.clock())


# --- failover (§1.3–1.7) --------------------------------------------------------------------------------


def prepare_failover(fleet: Fleet, host: Host, vm: VM) -> None:
    """Planned failover step 2, on the primary: VM Off and Replicating -> PreparedForFailover."""
    rep = _rep(vm)
    if vm.state != "Off":
        raise ReplicationError(STATE_TEXT)
    if rep.state != "Replicating":
        raise ReplicationError(replication_state_text(vm))
    rep.state = "PreparedForFailover"
    partner = fleet.partner(host, vm)
    if partner and partner[1].replication:  # the remaining changes reach the replica
        now = fleet.clock()
        partner[1].replication.last_replication_time = partner[1].replication.last_applied_log_time = now


def _check_replica_failover(vm: VM, test: bool) -> Replication:
    rep = _rep(vm)
    if rep.mode == "Primary":
        raise ReplicationError("'Prepare' is the only valid parameter for a primary virtual machine.",
                               "InvalidArgument")
    if vm.state != "Off" and not test:
        raise ReplicationError(STATE_TEXT)
    allowed = ("Replicating", "Suspended") if test else ("Replicating", "Suspended", "Resynchronizing",
                                                        "WaitingForUpdateCompletion")
    if rep.state not in allowed or rep.last_replication_time is None:
        raise ReplicationError(replication_state_text(vm))
    return rep


def recovery_point(vm: VM, point_id: uuid.UUID | None) -> Checkpoint | None:
    if point_id is None:
        return None
    point = next((c for c in vm.checkpoints if c.id == point_id), None)
    if point is None or point.type not in RECOVERY_TYPES:
        raise ReplicationError(f"'{point_id}' is not a valid recovery snapshot of '{vm.name}'.", "InvalidArgument")
    return point


def failover(fleet: Fleet, host: Host, vm: VM, point_id: uuid.UUID | None = None) -> None:
    """On the replica: fail over to the latest (or the chosen) recovery point; the VM is not started."""
    rep = _check_replica_failover(vm, test=False)
    recovery_point(vm, point_id)
    rep.state, rep.health = "FailedOverWaitingCompletion", "Warning"
    rep.health_details = [f"Failover is in progress for virtual machine '{vm.name}'."]
    vm.failover_point = point_id


def test_failover(fleet: Fleet, host: Host, vm: VM, point_id: uuid.UUID | None = None) -> VM:
    """Creates '<VM> - Test' (TestReplica); replication goes on; one test VM at a time. Each test adapter connects
    to its replica adapter's TestReplicaSwitchName, and to nothing when that is empty (hyperv.md §1.5)."""
    rep = _check_replica_failover(vm, test=True)
    recovery_point(vm, point_id)
    if rep.test_vm_id is not None:
        raise ReplicationError(replication_state_text(vm))
    test_vm = replace(vm, id=uuid.uuid4(), name=f"{vm.name} - Test", state="Off", started_at=None,
                      adapters=[replace(a.copy(), switch_name=a.test_replica_switch or None) for a in vm.adapters],
                      checkpoints=[],
                      replication=replace(rep, mode="TestReplica", state="Disabled", health="NotApplicable"),
                      extended=None, test_of=vm.id, creation_time=fleet.clock())
    host.vms.append(test_vm)
    rep.test_vm_id, rep.last_test_failover_time = test_vm.id, fleet.clock()
    return test_vm


def stop_failover(fleet: Fleet, host: Host, vm: VM) -> None:
    rep = _rep(vm)
    if rep.test_vm_id is not None:
        host.vms = [v for v in host.vms if v.id != rep.test_vm_id]
        rep.test_vm_id = None
    elif rep.state == "FailedOverWaitingCompletion":
        _turn_off(vm)
        _set(rep, "Replicating", "Normal")
    elif rep.state == "PreparedForFailover":
        _set(rep, "Replicating", "Normal")
    else:
        raise ReplicationError(replication_state_text(vm))


def complete_failover(fleet: Fleet, host: Host, vm: VM) -> None:
    """Commits the chosen point and merges away the other recovery points; health Warning until reversed."""
    rep = _rep(vm)
    if rep.state != "FailedOverWaitingCompletion":
        raise ReplicationError(replication_state_text(vm))
    vm.checkpoints = [c for c in vm.checkpoints if c.type not in RECOVERY_TYPES]
    rep.state, rep.health = "FailedOver", "Warning"
    rep.health_details = [f"Reverse replication has not been started for virtual machine '{vm.name}'."]


def as_replica(fleet: Fleet, host: Host, vm: VM) -> None:
    """Old primary after an unplanned failover: becomes a replica waiting for initial replication."""
    rep = _rep(vm) if vm.replication else None
    if rep is None:
        raise ReplicationError(f"Replication is not enabled for virtual machine '{vm.name}'.")
    _set(rep, "WaitingForInitialReplication", "Warning")
    rep.mode = "Replica"


def reverse(fleet: Fleet, host: Host, vm: VM, replica_server: str | None = None) -> None:
    """On the failed-over replica: it becomes the primary, replicating back to the old primary (§1.7)."""
    rep = _rep(vm)
    if rep.mode == "Primary":
        raise ReplicationError(replication_state_text(vm))
    if rep.state not in ("FailedOver", "FailedOverWaitingCompletion"):
        raise ReplicationError(replication_state_text(vm))
    if vm.extended is not None:
        # A VM has one replica, so it cannot replicate back while it still extends replication to a third
        # server (hyperv.md §1.7). The reference gives no error text: the lab refuses with the state text.
        raise ReplicationError(replication_state_text(vm))
    target_name = replica_server or rep.primary_server
    target = fleet.host(target_name)
    old = target.vm_by_id(vm.id)
    if old is None or old.replication is None:
        raise ReplicationError(replication_state_text(vm))
    planned = old.replication.state == "PreparedForFailover"
    if not planned and not (old.replication.mode == "Replica"
                            and old.replication.state == "WaitingForInitialReplication"):
        raise ReplicationError(replication_state_text(vm))
    vm.checkpoints = [c for c in vm.checkpoints if c.type not in RECOVERY_TYPES]
    for side in (rep, old.replication):
        side.primary_server, side.replica_server = host.fqdn, target.fqdn
    rep.mode, old.replication.mode = "Primary", "Replica"
    if planned:
        now = fleet.clock()
        for side in (rep, old.replication):
            _set(side, "Replicating", "Normal")
            side.last_replication_time = side.last_applied_log_time = now
    else:
        _set(rep, "ReadyForInitialReplication", "Warning")


def start_initial_replication(fleet: Fleet, host: Host, vm: VM) -> None:
    rep = _rep(vm)
    if rep.mode != "Primary" or rep.state != "ReadyForInitialReplication":
        raise ReplicationError(replication_state_text(vm))
    partner = fleet.partner(host, vm)
    now = fleet.clock()
    _set(rep, "Replicating", "Normal")
    rep.last_replication_time = rep.last_applied_log_time = now
    if partner and partner[1].replication:
        _set(partner[1].replication, "Replicating", "Normal")
        partner[1].replication.last_replication_time = partner[1].replication.last_applied_log_time = now
