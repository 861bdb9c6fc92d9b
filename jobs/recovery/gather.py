"""Replication facts of every VM of a resolved plan, read host by host: the same facts as
``jobs.failover.gather`` reads for one VM, but batched so 200 VMs cost two invocations per host, not ten per VM.

Per host, first one invocation of host-wide statements: ``Get-VM -Name '<vm>*' ...`` (the plan's VMs and their
test VMs; wildcards, so a missing VM is no error), ``Get-VMReplicationServer`` and ``Get-VMReplication`` (every
relationship of the host, Simple and Extended, hyperv.md §1.9). Then, for the VMs replicated there, one
invocation with ``Get-VMSnapshot -VMName ... -SnapshotType`` (Replica, AppConsistentReplica) and
``Get-VMIntegrationService -VMName ... -Name Shutdown``. A host that refuses a batched statement (a
PowerShell error: a VM vanished between the two reads, an endpoint without Get-VMReplicationServer) is read
VM by VM with the single-VM reader instead, so one odd VM never hides the others.

A running plan reads VMs it already knows are replicated: ``read_replicated`` sends all those statements in one
invocation (``Get-VMReplication -VMName ...`` instead of the host's every relationship) and falls back to the
two-step read above when the host refuses one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jobs.failover.facts import ReplicationFacts, SideFacts
from jobs.failover.gather import POINT_TYPES, SHUTDOWN_SERVICE, read_side, side_from_objects
from jobs.hyperv.commands import Pipeline, single
from jobs.hyperv.errors import PowerShellError
from jobs.hyperv.fleet import Fleet, HostCall
from jobs.hyperv.records import as_str, prop, type_name
from jobs.recovery.model import Member, ResolvedPlan

UNKNOWN_HOST = "(unknown host)"  # Member.primary_host None (not found) or replica_host "" (not replicated)


@dataclass
class PlanFacts:
    """Facts per VM name (lower case) and, per host that did not answer, the reason."""

    facts: dict[str, ReplicationFacts] = field(default_factory=dict)
    host_errors: dict[str, str] = field(default_factory=dict)

    def of(self, vm: str) -> ReplicationFacts | None:
        return self.facts.get(vm.lower())


def host_reads(vms: Sequence[str]) -> list[Pipeline]:
    return [single("Get-VM", Name=[f"{vm}*" for vm in vms]), single("Get-VMReplicationServer"),
            single("Get-VMReplication")]


def detail_reads(vms: Sequence[str]) -> list[Pipeline]:
    return [*(single("Get-VMSnapshot", VMName=list(vms), SnapshotType=t) for t in POINT_TYPES),
            single("Get-VMIntegrationService", VMName=list(vms), Name=[SHUTDOWN_SERVICE])]


def run_reads(vms: Sequence[str]) -> list[Pipeline]:
    """Every read of VMs expected to be replicated on this host, in one invocation (a recovery run's reads)."""
    return [single("Get-VM", Name=[f"{vm}*" for vm in vms]), single("Get-VMReplicationServer"),
            single("Get-VMReplication", VMName=list(vms)), *detail_reads(vms)]


def _owner(obj: Any) -> str:
    """The VM an object belongs to (lower case): its Name for a VM, its VMName for everything else."""
    key = "Name" if type_name(obj) == "VirtualMachine" else "VMName"
    return (as_str(prop(obj, key)) or "").lower()


def read_host(call: HostCall, vms: Sequence[str]) -> dict[str, SideFacts]:
    """This host's side of each of ``vms`` (keyed by lower-case name); HyperVError only when the host fails."""
    try:
        return _read_batched(call, vms)
    except PowerShellError:  # the host answered but refused a batched statement: read each VM on its own
        return {vm.lower(): read_side(call, vm) for vm in vms}


def read_replicated(call: HostCall, vms: Sequence[str]) -> dict[str, SideFacts]:
    """As ``read_host``, in one invocation while every VM is there and replicated (a running plan's VMs); when the
    host refuses a statement (a VM gone, or no longer replicated here), ``read_host`` reads them again."""
    try:
        objects = call.run(run_reads(vms))
    except PowerShellError:
        return read_host(call, vms)
    return _sides(call, vms, objects, detailed=True)


def _read_batched(call: HostCall, vms: Sequence[str]) -> dict[str, SideFacts]:
    return _sides(call, vms, call.run(host_reads(vms)), detailed=False)


def _sides(call: HostCall, vms: Sequence[str], objects: list[Any], detailed: bool) -> dict[str, SideFacts]:
    """Each VM's side from the host-wide objects; without ``detailed``, the replicated VMs' details are read now."""
    by_vm: dict[str, list[Any]] = defaultdict(list)
    servers = [o for o in objects if type_name(o) == "VMReplicationServer"]
    for obj in objects:
        if type_name(obj) != "VMReplicationServer":
            by_vm[_owner(obj)].append(obj)
    present = {vm.lower() for vm in vms if any(type_name(o) == "VirtualMachine" for o in by_vm[vm.lower()])}
    replicated = [vm for vm in vms if vm.lower() in present
                  and any(type_name(o) == "VMReplication" for o in by_vm[vm.lower()])]
    if replicated and not detailed:
        for obj in call.run(detail_reads(replicated)):
            by_vm[_owner(obj)].append(obj)
    fqdn = call.session.config.fqdn or ""
    out: dict[str, SideFacts] = {}
    for vm in vms:
        key = vm.lower()
        own = [*by_vm[key], *by_vm[f"{key} - test"], *servers]
        problem = None
        if key not in present:
            problem = f"there is no VM named {vm} on {call.host}"
        elif vm not in replicated:
            problem = f"replication is not enabled for {vm} on {call.host}"
        out[key] = side_from_objects(call.host, fqdn, vm, own, problem=problem)
    return out


def _hosts_of(plan: ResolvedPlan) -> dict[str, list[str]]:
    wanted: dict[str, list[str]] = defaultdict(list)
    for m in plan.vms():
        for host in (m.primary_host, m.replica_host):
            if host and m.vm not in wanted[host]:
                wanted[host].append(m.vm)
    return wanted


def gather_plan(fleet: Fleet, plan: ResolvedPlan, deadline_s: float | None = None) -> PlanFacts:
    """Fresh facts of every VM of ``plan``, all hosts in parallel; a host that does not answer leaves its side
    ``reachable=False`` (and its reason in ``host_errors``) while the other hosts' facts still arrive."""
    wanted = _hosts_of(plan)
    out = fleet.fan_out(lambda call: read_host(call, wanted[call.host]), hosts=list(wanted), deadline_s=deadline_s)
    result = PlanFacts(host_errors={h: err.message for h, err in out.errors.items()})
    for m in plan.vms():
        result.facts[m.vm.lower()] = ReplicationFacts(m.vm, _side(fleet, out.results, m.primary_host, m),
                                                      _side(fleet, out.results, m.replica_host, m))
    return result


def _side(fleet: Fleet, results: dict[str, dict[str, SideFacts]], host: str | None, m: Member) -> SideFacts:
    if not host:
        return SideFacts(host=UNKNOWN_HOST, reachable=False)
    if host in results:
        return results[host][m.vm.lower()]
    return SideFacts(host=host, fqdn=fleet.config(host).fqdn or "", reachable=False)
