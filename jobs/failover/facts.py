"""Replication facts of one VM on its primary and replica host, and named checks on them.

Plain data: another module fills them from the hosts (Get-VM, Get-VMReplication, Get-VMSnapshot); plans
(``jobs.failover.plan``) and their pre/post checks read them. State names are PowerShell's (hyperv.md §3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

# hyperv.md §3.5: only these snapshot types are recovery points Start-VMFailover accepts.
RECOVERY_POINT_TYPES = frozenset({"Replica", "AppConsistentReplica", "SyncedReplica"})
# hyperv.md §1.4 (decompiled ValidateReplicationForFailover), in PowerShell state names.
FAILOVER_STATES = frozenset({"Replicating", "Resynchronizing", "Suspended", "WaitingForUpdateCompletion"})
# hyperv.md §1.5: -AsTest is refused while resynchronizing or waiting for update completion.
TEST_REFUSED_STATES = frozenset({"Resynchronizing", "WaitingForUpdateCompletion"})
FAILED_OVER_STATES = frozenset({"FailedOverWaitingCompletion", "FailedOver"})
# hyperv.md §3.6 VMHeartbeatStatus values that mean the guest stopped answering or reports itself critical.
BAD_HEARTBEATS = frozenset({"NoContact", "Error", "LostCommunication", "OkApplicationsCritical"})


@dataclass(frozen=True)
class RecoveryPoint:
    name: str
    snapshot_type: str  # SnapshotType name, hyperv.md §3.5
    creation_time: datetime
    id: str = ""


@dataclass(frozen=True)
class SideFacts:
    """One host's view of the VM (Get-VM, Get-VMReplication, Get-VMSnapshot on that host)."""

    host: str  # short inventory name: where steps run
    fqdn: str = ""  # what Hyper-V's PrimaryServerName/ReplicaServerName use
    reachable: bool = True
    mode: str | None = None  # VMReplicationMode: Primary, Replica, ...; None when the VM is absent
    state: str | None = None  # VMReplicationState
    health: str | None = None  # VMReplicationHealthState
    vm_state: str | None = None  # VMState: Running, Off, ...
    heartbeat: str | None = None  # VMHeartbeatStatus
    marked_broken: bool = False  # flagged as not working although running (the firewall story)
    last_replication: datetime | None = None
    recovery_points: tuple[RecoveryPoint, ...] = ()
    test_vm_present: bool = False
    test_vm_state: str | None = None
    replica_server_enabled: bool | None = None  # Get-VMReplicationServer ReplicationEnabled; None: unknown
    extended_to: str | None = None  # ReplicaServerName of an Extended relationship this side replicates to
    problem: str | None = None  # why the VM's replication could not be read here (missing, not replicated)
    shutdown_service: str | None = None  # the Shutdown integration service's status (Ok, ...); None: not reported


@dataclass(frozen=True)
class ReplicationFacts:
    vm: str
    primary: SideFacts  # the side that was primary before any failover (the replica pair's source)
    replica: SideFacts

    def side(self, host: str) -> SideFacts:
        for s in (self.primary, self.replica):
            if s.host == host:
                return s
        raise KeyError(f"{host} is neither the primary nor the replica host of {self.vm}")

    def other(self, host: str) -> SideFacts:
        return self.replica if self.primary.host == host else self.primary


@dataclass(frozen=True)
class Check:
    """A named predicate on one host's facts; the text says what must hold, in plain words."""

    host: str
    text: str
    test: Callable[[SideFacts], bool]

    def holds(self, facts: ReplicationFacts) -> bool:
        side = facts.side(self.host)
        return side.reachable and self.test(side)

    def failure(self, facts: ReplicationFacts) -> str | None:
        """None when the check holds, else what should hold (and why the host could not tell, if so)."""
        if self.holds(facts):
            return None
        side = facts.side(self.host)
        why = "" if side.reachable else " (the host does not answer)"
        return self.describe() + (f" ({side.problem})" if side.problem else why)

    def describe(self) -> str:
        return f"{self.host}: {self.text}"


# --- checks ---------------------------------------------------------------------------------------------

def vm_is(host: str, *states: str) -> Check:
    return Check(host, f"VM is {' or '.join(states)}", lambda s: s.vm_state in states)


def mode_is(host: str, mode: str) -> Check:
    return Check(host, f"replication mode is {mode}", lambda s: s.mode == mode)


def state_in(host: str, states: frozenset[str] | set[str]) -> Check:
    names = " or ".join(sorted(states))
    return Check(host, f"replication state is {names}", lambda s: s.state in states)


def health_is(host: str, health: str) -> Check:
    return Check(host, f"replication health is {health}", lambda s: s.health == health)


def received_replication(host: str) -> Check:
    return Check(host, "has received at least one replication", lambda s: s.last_replication is not None)


def no_test_vm(host: str) -> Check:
    return Check(host, "no test failover VM exists", lambda s: not s.test_vm_present)


def looks_broken(side: SideFacts) -> str | None:
    """Why a running VM looks unhealthy, in plain words; None when nothing says so."""
    if side.vm_state is not None and side.vm_state.endswith("Critical"):
        return f"the VM on {side.host} is in state {side.vm_state}"
    if side.vm_state != "Running":
        return None
    if side.marked_broken:
        return f"the VM on {side.host} is running but marked broken (not working)"
    if side.heartbeat in BAD_HEARTBEATS:
        return f"the VM on {side.host} is running but its heartbeat is {side.heartbeat}"
    return None
