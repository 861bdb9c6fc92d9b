"""Replication facts of one VM read from its two hosts through pypsrp, and finding those hosts.

Per side, two invocations of read-only statements (hyperv.md §1.2, §1.9, §2.7, §3). First ``Get-VM -Name
'<vm>*'`` (the VM and its '<vm> - Test' VM; a wildcard so a missing VM is no error) and
``Get-VMReplicationServer``. Then, only when the VM is there, ``Get-VMReplication -VMName`` (both
relationships: the VM's own, Simple, and an Extended one), ``Get-VMSnapshot -VMName -SnapshotType`` for Replica
and AppConsistentReplica recovery points, and ``Get-VMIntegrationService -VMName -Name Shutdown``. With
``-ErrorAction Stop`` that second invocation fails on a VM that is not replicated on this host; the failure
becomes the side's ``problem``, never an aborted read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jobs.failover.facts import RecoveryPoint, ReplicationFacts, SideFacts
from jobs.hyperv.commands import Pipeline, single
from jobs.hyperv.errors import HyperVError, PowerShellError
from jobs.hyperv.fleet import Fleet, HostCall
from jobs.hyperv.records import SnapshotRecord, VmRecord, as_str, enum_name, parse_datetime, prop, type_name

POINT_TYPES = ("Replica", "AppConsistentReplica")
SHUTDOWN_SERVICE = "Shutdown"  # the integration service's English name (names are localized on other hosts)


class FailoverLookupError(RuntimeError):
    """The VM's replica pair cannot be determined; the message says why (one sentence, user-facing)."""


class AmbiguousVm(FailoverLookupError):
    def __init__(self, vm: str, pairs: Sequence[tuple[str, str]]) -> None:
        self.vm, self.pairs = vm, list(pairs)
        shown = "; ".join(f"primary {p} / replica {r}" for p, r in pairs)
        super().__init__(f"Several replicated VMs are named {vm} ({shown}); add --host HOST to choose one.")


@dataclass(frozen=True)
class Pair:
    primary: str  # inventory short names
    replica: str


def vm_reads(vm: str) -> list[Pipeline]:
    return [single("Get-VM", Name=[f"{vm}*"]), single("Get-VMReplicationServer")]


def replication_reads(vm: str) -> list[Pipeline]:
    return [single("Get-VMReplication", VMName=[vm]),
            *(single("Get-VMSnapshot", VMName=[vm], SnapshotType=t) for t in POINT_TYPES),
            single("Get-VMIntegrationService", VMName=[vm], Name=[SHUTDOWN_SERVICE])]


def side_reads(vm: str) -> list[Pipeline]:
    """Every read of one side, in the order they are sent."""
    return vm_reads(vm) + replication_reads(vm)


def _host_name(fleet: Fleet, server: str | None) -> str | None:
    if not server:
        return None
    for name in (server, server.split(".")[0]):
        try:
            return fleet.inventory.host(name).name
        except KeyError:
            continue
    return None


def _pair_of(fleet: Fleet, host: str, vm: str, deadline_s: float | None) -> Pair | None:
    out = fleet.run(host, single("Get-VMReplication", VMName=[vm], ReplicationRelationshipType="Simple"),
                    deadline_s=deadline_s)
    for obj in out:
        primary = _host_name(fleet, as_str(prop(obj, "PrimaryServerName")))
        replica = _host_name(fleet, as_str(prop(obj, "ReplicaServerName")))
        mode = enum_name(prop(obj, "ReplicationMode"))
        if primary and replica and primary != replica:
            return Pair(primary, replica)
        if mode == "Replica" and primary:  # a replica always knows its primary server
            return Pair(primary, host)
    return None


def locate(fleet: Fleet, vm: str, host: str | None = None, deadline_s: float | None = None) -> Pair:
    """The primary and replica host of ``vm``; ``host`` picks one pair when several VMs share the name."""
    if host is not None:
        try:
            pair = _pair_of(fleet, fleet.session(host).name, vm, deadline_s)
        except PowerShellError as err:  # -ErrorAction Stop: the VM is missing or not replicated there
            raise FailoverLookupError(f"{vm} on {host} has no replication to fail over: "
                                      f"{_first_message(err)}") from None
        if pair is None:
            raise FailoverLookupError(f"{vm} on {host} is not replicated, so it has no replica to fail over to.")
        return pair
    found = fleet.find_vm(vm, deadline_s=deadline_s)
    holders = [loc.host for locs in found.results.values() for loc in locs
               if loc.name.lower() == vm.lower() and loc.replication_mode in ("Primary", "Replica")]
    pairs: list[Pair] = []
    for h in holders:
        pair = _pair_of(fleet, h, vm, deadline_s)
        if pair is not None and pair not in pairs:
            pairs.append(pair)
    if len(pairs) > 1:
        raise AmbiguousVm(vm, [(p.primary, p.replica) for p in pairs])
    if pairs:
        return pairs[0]
    silent = f" (no answer from {', '.join(found.errors)})" if found.errors else ""
    raise FailoverLookupError(f"No replicated VM named {vm} was found{silent}.")


def _first_message(err: PowerShellError) -> str:
    return err.details[0].message.strip() if err.details else err.message


def read_side(call: HostCall, vm: str) -> SideFacts:
    """One host's facts; raises HyperVError only when the host itself cannot be read."""
    try:
        objects = call.run(vm_reads(vm))
        server_known = True
    except PowerShellError:  # an endpoint without Get-VMReplicationServer: that fact stays unknown
        objects, server_known = call.run(single("Get-VM", Name=[f"{vm}*"])), False
    fqdn = call.session.config.fqdn or ""
    if not any(type_name(o) == "VirtualMachine" and str(prop(o, "Name") or "").lower() == vm.lower()
               for o in objects):
        return side_from_objects(call.host, fqdn, vm, objects, server_known,
                                 problem=f"there is no VM named {vm} on {call.host}")
    try:
        objects = [*objects, *call.run(replication_reads(vm))]
    except PowerShellError as err:
        return side_from_objects(call.host, fqdn, vm, objects, server_known,
                                 problem=f"{call.host} cannot read the replication of {vm}: {_first_message(err)}")
    return side_from_objects(call.host, fqdn, vm, objects, server_known)


def _relationship(reps: Sequence[Any], kind: str) -> Any:
    return next((o for o in reps if (enum_name(prop(o, "ReplicationRelationshipType")) or "Simple") == kind), None)


def _shutdown_status(component: Any) -> str | None:
    """Ok, another VMIntegrationComponentOperationalStatus, Disabled when switched off, None when not reported."""
    if component is None:
        return None
    if prop(component, "Enabled") is False:
        return "Disabled"
    return enum_name(prop(component, "PrimaryOperationalStatus"))


def side_from_objects(host: str, fqdn: str, vm: str, objects: Sequence[Any], server_known: bool = True,
                      problem: str | None = None) -> SideFacts:
    vms = {r.name.lower(): r for o in objects if type_name(o) == "VirtualMachine" for r in [VmRecord.parse(host, o)]}
    own, test = vms.get(vm.lower()), vms.get(f"{vm} - test".lower())
    reps = [o for o in objects if type_name(o) == "VMReplication"]
    rep, extended = _relationship(reps, "Simple"), _relationship(reps, "Extended")
    server = next((o for o in objects if type_name(o) == "VMReplicationServer"), None)
    shutdown = next((o for o in objects if type_name(o) == "VMIntegrationComponent"), None)
    enabled = prop(server, "ReplicationEnabled") if server is not None and server_known else None
    snaps = [SnapshotRecord.parse(host, o) for o in objects if type_name(o) == "VMSnapshot"]
    points = tuple(RecoveryPoint(s.name, s.snapshot_type or "", s.creation_time, s.id or "")
                   for s in snaps if s.snapshot_type in POINT_TYPES and s.creation_time is not None)
    return SideFacts(
        host=host, fqdn=fqdn, reachable=True,
        mode=enum_name(prop(rep, "ReplicationMode")) if rep is not None else None,
        state=enum_name(prop(rep, "ReplicationState")) if rep is not None else None,
        health=enum_name(prop(rep, "ReplicationHealth")) if rep is not None else None,
        vm_state=own.state if own else None, heartbeat=own.heartbeat if own else None,
        last_replication=parse_datetime(prop(rep, "LastReplicationTime")) if rep is not None else None,
        recovery_points=tuple(sorted(points, key=lambda p: p.creation_time)),
        test_vm_present=test is not None, test_vm_state=test.state if test else None,
        replica_server_enabled=enabled if isinstance(enabled, bool) else None,
        extended_to=as_str(prop(extended, "ReplicaServerName")) if extended is not None else None,
        shutdown_service=_shutdown_status(shutdown),
        problem=problem,
    )


def gather(fleet: Fleet, vm: str, pair: Pair, deadline_s: float | None = None) -> ReplicationFacts:
    """Fresh facts of both sides, read in parallel; a host that does not answer is ``reachable=False``."""
    out = fleet.fan_out(lambda call: read_side(call, vm), hosts=[pair.primary, pair.replica], deadline_s=deadline_s)
    for host, err in out.errors.items():
        if isinstance(err, PowerShellError):  # the host answered: a real refusal, not a lost host
            raise err

    def side(host: str) -> SideFacts:
        if host in out.results:
            return out.results[host]
        return SideFacts(host=host, fqdn=fleet.config(host).fqdn or "", reachable=False)

    return ReplicationFacts(vm, side(pair.primary), side(pair.replica))


def is_host_error(err: HyperVError) -> bool:
    """True when the host itself failed (unreachable, timeout, auth), not the command."""
    return not isinstance(err, PowerShellError)
