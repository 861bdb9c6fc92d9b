"""Fleet state of the simulated Hyper-V hosts: hosts, VMs, adapters, checkpoints, replication.

Enum-valued fields hold the real enum member names of ``hyperv-types.json`` (``VMState``,
``VMReplicationState``, ``VMReplicationHealthState``, ``VMReplicationMode``, ``SnapshotType``, ``OnOffState``).
One ``threading.RLock`` per ``Fleet`` guards everything; protocol threads run many pipelines at once.
Replica relationships (and their state machine) live in ``lab.replication``.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Callable

from lab import hvdata
from lab.clock import utc_now

MIB = 1024 * 1024
RUNNING_LIKE = ("Running", "Paused")


def check_enum(enum_name: str, value: str) -> str:
    """Canonical member name, or ValueError naming the enum and its members."""
    try:
        return hvdata.enum_name_for(enum_name, value)
    except ValueError:
        members = ", ".join(hvdata.enum_members(enum_name))
        raise ValueError(f"{value!r} is not a valid {enum_name} (one of: {members})") from None


@dataclass
class Memory:
    dynamic: bool
    startup: int  # bytes
    minimum: int
    maximum: int
    buffer: int = 20  # percent
    priority: int = 50


@dataclass
class NetAdapter:
    name: str
    mac: str
    switch_name: str | None
    ipv4: list[str] = field(default_factory=list)
    ipv6: list[str] = field(default_factory=list)
    allow_teaming: str = "Off"  # OnOffState
    adapter_guid: uuid.UUID = field(default_factory=uuid.uuid4)
    # Set on a replica VM's adapter: the switch a test-failover VM's adapter connects to ("" = not connected).
    test_replica_switch: str = ""

    def copy(self) -> NetAdapter:
        return replace(self, ipv4=list(self.ipv4), ipv6=list(self.ipv6))


@dataclass
class Checkpoint:
    id: uuid.UUID
    name: str
    type: str  # SnapshotType
    creation_time: datetime
    parent_id: uuid.UUID | None = None


@dataclass
class Replication:
    """One side's view of a Hyper-V Replica relationship (the primary VM or the replica VM)."""

    mode: str  # VMReplicationMode
    state: str  # VMReplicationState (PowerShell names, §3.2)
    health: str  # VMReplicationHealthState
    primary_server: str  # FQDN
    replica_server: str  # FQDN
    frequency_sec: int = 300
    replica_port: int = 80
    auth_type: str = "Kerberos"
    recovery_history: int = 0
    vss_frequency_hour: int = 0
    compression: bool = True
    last_replication_time: datetime | None = None
    last_applied_log_time: datetime | None = None
    monitoring_start: datetime | None = None  # start of the current monitoring interval (lab.health)
    counted_until: datetime | None = None  # statistics hold the cycles up to here
    successful_count: int = 0
    missed_count: int = 0
    errors: int = 0
    pending_size: int = 0
    average_size: int = 0
    maximum_size: int = 0
    average_latency: timedelta | None = None
    health_details: list[str] = field(default_factory=list)
    test_vm_id: uuid.UUID | None = None
    last_test_failover_time: datetime | None = None
    relationship_type: str = "Simple"
    log_apply: "LogApply | None" = None  # simulated log-apply cycles (lab.timeline); None = static times
    current_tasks: list[str] = field(default_factory=list)  # Measure-VMReplication CurrentTask, as serialized
    resync_seconds: float = 60.0  # how long a resynchronization runs (fleet clock)
    resync_done_at: datetime | None = None  # when the running resynchronization finishes


@dataclass
class LogApply:
    """Replica log-apply cycles: a log arrives every ``frequency_sec`` from ``anchor``; applying it takes
    ``apply_sec``. ``applied_before`` is the last applied time before the first cycle."""

    anchor: datetime
    apply_sec: float
    applied_before: datetime | None = None


@dataclass
class ExportRecord:
    """One Export-VMSnapshot run, as the lab saw it (status: Running, Completed, Cancelled, Failed)."""

    host: str
    vm: str
    checkpoint: str
    checkpoint_id: uuid.UUID
    path: str
    started: datetime
    status: str = "Running"
    percent: int = 0
    finished: datetime | None = None
    error: str | None = None


@dataclass
class Injection:
    """The next ``count`` calls of ``cmdlet`` on a host (and VM, when given) fail with ``message``."""

    cmdlet: str
    host: str
    vm: str | None
    count: int
    message: str | None = None
    category: str | None = None
    after_steps: int = 0  # Export-VMSnapshot: fail after this many progress steps


@dataclass
class VM:
    id: uuid.UUID
    name: str
    memory: Memory
    state: str = "Off"  # VMState
    cpu_count: int = 2
    adapters: list[NetAdapter] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    replication: Replication | None = None  # the VM's own relationship (Simple)
    # On a replica host only: the relationship that extends this replica to a third server (hyperv.md §1.9,
    # Get-VMReplication -ReplicationRelationshipType Extended); its mode is the VM's, Replica.
    extended: Replication | None = None
    creation_time: datetime = field(default_factory=utc_now)
    generation: int = 2
    version: str = "10.0"
    notes: str = ""
    started_at: datetime | None = None
    cpu_usage: int = 0  # percent while running
    broken: bool = False  # running but not working (heartbeat lost, CPU pegged)
    test_of: uuid.UUID | None = None  # a test-failover VM: the replica VM it was made from
    failover_point: uuid.UUID | None = None  # recovery point chosen by an unplanned failover
    secondary_status: str | None = None  # VMOperationalStatus while an operation runs (migration, export)
    shutdown_service: bool = True  # the guest's Shutdown integration service is enabled
    # The guest answers its integration services this long after it started (fleet clock); 0 = at once.
    boot_seconds: float = 0.0
    never_heartbeat: bool = False  # the guest never answers: a VM that starts but never boots

    @property
    def running(self) -> bool:
        return self.state in RUNNING_LIKE

    def uptime(self, now: datetime) -> timedelta:
        if not self.running or self.started_at is None:
            return timedelta(0)
        return max(timedelta(0), now - self.started_at)

    def memory_assigned(self) -> int:
        if not self.running:
            return 0
        if not self.memory.dynamic:
            return self.memory.startup
        want = self.memory_demand() * (100 + self.memory.buffer) // 100
        rounded = -(-want // (2 * MIB)) * 2 * MIB  # Hyper-V assigns in 2 MiB-aligned blocks
        return max(self.memory.minimum, min(self.memory.maximum, rounded))

    def memory_demand(self) -> int:
        if not self.running:
            return 0
        return self.memory.startup * 6 // 10

    def reports_ips(self) -> bool:
        """Guest addresses come from KVP exchange: only while the guest runs and answers (§1.1)."""
        return self.state == "Running" and not self.broken

    def booting(self, now: datetime | None) -> bool:
        """Started less than ``boot_seconds`` ago, or never to finish booting: the guest does not answer yet."""
        if not self.running:
            return False
        if self.never_heartbeat:
            return True
        if now is None or self.started_at is None or self.boot_seconds <= 0:
            return False
        return now - self.started_at < timedelta(seconds=self.boot_seconds)

    def guest_status(self, now: datetime | None) -> str | None:
        """VMIntegrationComponentOperationalStatus of a running guest's services (None when it is off). Before its
        integration services start, a guest has not made contact (inference: the reference lists NoContact without
        saying when Hyper-V reports it)."""
        if not self.running:
            return None
        if self.broken:
            return "LostCommunication"
        return "NoContact" if self.booting(now) else "Ok"

    def heartbeat(self, now: datetime | None = None) -> str | None:
        """VMHeartbeatStatus (Get-VM's Heartbeat): NoContact while booting, then OK."""
        status = self.guest_status(now)
        return {None: None, "Ok": "OkApplicationsHealthy"}.get(status, status)

    def shutdown_status(self, now: datetime | None = None) -> str | None:
        """PrimaryOperationalStatus of the Shutdown integration service (VMIntegrationComponentOperationalStatus).

        The reference does not say which statuses make Stop-VM prompt; the lab takes the stricter reading:
        anything but Ok on a running VM (a disabled service, or a guest that stopped answering)."""
        if not self.running:
            return None
        if not self.shutdown_service:
            return "Disabled"
        return self.guest_status(now)

    def current_checkpoint(self) -> Checkpoint | None:
        own = [c for c in self.checkpoints if c.type not in ("Replica", "AppConsistentReplica", "SyncedReplica")]
        return own[-1] if own else None


@dataclass
class Host:
    name: str
    fqdn: str
    site: str
    allow_script: bool = False
    jea_configuration: str | None = None
    vms: list[VM] = field(default_factory=list)
    powered: bool = True
    was_running: set[uuid.UUID] = field(default_factory=set)  # VMs to restart when power returns
    replica_server_enabled: bool = True  # Get-VMReplicationServer ReplicationEnabled (hyperv.md §2.7)
    logical_processors: int = 32
    memory_capacity: int = 256 * 1024 * MIB
    monitoring_interval: timedelta = timedelta(hours=12)  # Set-VMReplicationServer default (hyperv.md §7)
    utc_offset_minutes: int = 0  # the host's local time zone: its DateTimes go out in it (lab.clock.HostZone)

    def vms_named(self, name: str) -> list[VM]:
        return [vm for vm in self.vms if vm.name.lower() == name.lower()]

    def vm_by_id(self, vm_id: uuid.UUID) -> VM | None:
        return next((vm for vm in self.vms if vm.id == vm_id), None)


ControlActions = Callable[["Fleet", str, dict[str, Any]], dict[str, Any]]


class Fleet:
    """All hosts, one lock. ``clock`` is injectable so tests see fixed times; ``controls`` runs the
    model-level control actions (``lab.controls.apply``, given by whoever builds the fleet)."""

    def __init__(self, hosts: dict[str, Host], clock: Callable[[], datetime] = utc_now,
                 controls: ControlActions | None = None) -> None:
        self.hosts = hosts
        self.lock = threading.RLock()
        self.clock = clock  # swappable (lab.clock.ManualClock, or the ``clock`` control action)
        self.controls = controls
        self.exports: list[ExportRecord] = []
        self.injections: list[Injection] = []
        self.export_seconds = 5.0  # Export-VMSnapshot duration (wall clock: the client watches it)
        self.export_steps = 10

    def take_injection(self, cmdlet: str, host: str, vm: str) -> Injection | None:
        """Consume one injected failure for this call, if any is armed (caller holds the lock)."""
        for inj in self.injections:
            if (inj.cmdlet.lower() == cmdlet.lower() and inj.host.lower() == host.lower()
                    and (inj.vm is None or inj.vm.lower() == vm.lower())):
                inj.count -= 1
                if inj.count <= 0:
                    self.injections.remove(inj)
                return inj
        return None

    def host(self, name: str) -> Host:
        for host in self.hosts.values():
            if name.lower() in (host.name.lower(), host.fqdn.lower()):
                return host
        raise ValueError(f"no host named {name!r} (hosts: {', '.join(self.hosts)})")

    def vm(self, host_name: str, vm_name: str) -> VM:
        host = self.host(host_name)
        found = host.vms_named(vm_name)
        if not found:
            raise ValueError(f"no VM named {vm_name!r} on host {host.name}")
        return found[0]

    def partner(self, host: Host, vm: VM, rep: Replication | None = None) -> tuple[Host, VM] | None:
        """The other side of ``vm``'s replica relationship ``rep`` (default: its Simple one): the same VM id on
        the other server."""
        rep = rep or vm.replication
        if rep is None:
            return None
        other = rep.replica_server if host.fqdn.lower() == rep.primary_server.lower() else rep.primary_server
        try:
            other_host = self.host(other)
        except ValueError:
            return None
        other_vm = other_host.vm_by_id(vm.id)
        return (other_host, other_vm) if other_vm is not None else None

    def apply_control(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        """Model-level control actions (vm_state, replication, power_loss, recover, broken, ...), under the lock."""
        if self.controls is None:
            raise ValueError(f"this fleet has no control actions (cannot run {action!r})")
        with self.lock:
            return self.controls(self, action, args)
