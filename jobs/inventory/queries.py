"""Inventory operations across the fleet, as plain ``Report``s: IPs, who holds an IP, VMs, memory, teaming,
checkpoints. VMs with the same name on several hosts stay separate rows (every row names its host).
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from jobs.hyperv.commands import Pipeline, command, pipeline, single
from jobs.hyperv.errors import HyperVError, PowerShellError
from jobs.hyperv.fleet import FanOut, Fleet, HostCall
from jobs.hyperv.records import (
    MemoryRecord,
    NetAdapterRecord,
    SnapshotRecord,
    VmRecord,
    as_str,
    enum_name,
    prop,
    type_name,
)
from jobs.report import Cell, Report

T = TypeVar("T")
Row = dict[str, Cell]

IP_COLUMNS = ["host", "vm", "adapter", "mac", "switch", "ipv4", "ipv6"]
VM_COLUMNS = ["host", "vm", "state", "uptime_s", "cpu_usage", "processors", "memory_assigned", "memory_demand",
              "replication_mode", "replication_state", "replication_health"]
MEMORY_COLUMNS = ["host", "vm", "dynamic", "startup", "minimum", "maximum", "buffer", "priority", "assigned",
                  "demand", "pressure_pct", "at_maximum"]
TEAMING_COLUMNS = ["host", "vm", "adapter", "switch", "mac", "allow_teaming"]
CHECKPOINT_COLUMNS = ["host", "vm", "name", "type", "created", "parent"]


# Get-VM gives the states (no script, no Where-Object: JEA's NoLanguage); the piped pipeline the adapters.
_IPS_STATEMENTS = (single("Get-VM"), pipeline(command("Get-VM"), command("Get-VMNetworkAdapter", piped=True)))
# The same on full-language endpoints, trimmed to the properties the listing reads: whole VirtualMachine and
# VMNetworkAdapter objects were ~114 KB of CLIXML per 10-VM host, most of a fleet listing's client CPU
# (bench/fanout.py). JEA's restricted Select-Object refuses these names (hyperv.md §6.2): JEA keeps the above.
_VM_FIELDS = ["Id", "Name", "State"]
_ADAPTER_FIELDS = ["VMId", "VMName", "Name", "MacAddress", "SwitchName", "IPAddresses"]
_IPS_SELECTED = (
    pipeline(command("Get-VM"), command("Select-Object", piped=True, Property=_VM_FIELDS)),
    pipeline(command("Get-VM"), command("Get-VMNetworkAdapter", piped=True),
             command("Select-Object", piped=True, Property=_ADAPTER_FIELDS)),
)


def find_ips(fleet: Fleet, targets: Sequence[str] = (), host: str | None = None) -> Report:
    """IPs of running VMs; ``targets`` narrows to VM names (wildcards), addresses or prefixes (10.0.4.0/24)."""
    match = _target_matcher(targets)

    def per_host(call: HostCall) -> list[Row]:
        # Both pipelines as statements of one invocation: one Command/Receive/Signal instead of two.
        out = call.run(_IPS_STATEMENTS if call.session.restricted else _IPS_SELECTED)
        # Only Id, Name and State: a whole VmRecord per VM was a tenth of a fleet listing's client CPU.
        running = {as_str(prop(o, "Id") or prop(o, "VMId")) or as_str(prop(o, "Name") or prop(o, "VMName")) or ""
                   for o in out if type_name(o) == "VirtualMachine" and enum_name(prop(o, "State")) == "Running"}
        adapters = [NetAdapterRecord.parse(call.host, o) for o in out if type_name(o) == "VMNetworkAdapter"]
        rows: list[Row] = []
        for a in adapters:
            if (a.vm_id or a.vm_name) in running and match(a):
                rows.append({"host": a.host, "vm": a.vm_name, "adapter": a.name, "mac": a.mac,
                             "switch": a.switch_name, "ipv4": a.ipv4, "ipv6": a.ipv6})
        return rows

    return _report("ips", IP_COLUMNS, fleet.fan_out(per_host, fleet.select(host)))


def list_vms(fleet: Fleet, name_filter: str | None = None, host: str | None = None) -> Report:
    def per_host(call: HostCall) -> list[Row]:
        return [_vm_row(v) for v in _missing_is_empty(lambda: _vms(call, name_filter))]

    return _report("vms", VM_COLUMNS, fleet.fan_out(per_host, fleet.select(host)), name_filter)


def memory(fleet: Fleet, vm: str | None = None, host: str | None = None, at_max: bool = False) -> Report:
    """Dynamic memory per VM; ``at_max`` keeps only VMs at their maximum (``at_maximum``), worst first."""

    def per_host(call: HostCall) -> list[Row]:
        def both() -> list[Row]:
            vms = _vms(call, vm)
            mems = {(m.vm_id or m.vm_name): m
                    for m in (MemoryRecord.parse(call.host, o) for o in call.run(memory_pipeline(vm)))}
            return [_memory_row(v, mems.get(v.id or v.name)) for v in vms]

        return _missing_is_empty(both)

    report = _report("memory", MEMORY_COLUMNS, fleet.fan_out(per_host, fleet.select(host)), vm)
    if at_max:
        report.rows = sorted((r for r in report.rows if r["at_maximum"]), key=_over_maximum)
    return report


def teaming(fleet: Fleet, vm: str | None = None, host: str | None = None) -> Report:
    def per_host(call: HostCall) -> list[Row]:
        pipe = teaming_pipeline(vm)

        def read() -> list[Row]:
            return [{"host": a.host, "vm": a.vm_name, "adapter": a.name, "switch": a.switch_name, "mac": a.mac,
                     "allow_teaming": a.allow_teaming}
                    for a in (NetAdapterRecord.parse(call.host, o) for o in call.run(pipe))]

        return _missing_is_empty(read)

    return _report("teaming", TEAMING_COLUMNS, fleet.fan_out(per_host, fleet.select(host)), vm)


def checkpoints(fleet: Fleet, vm: str, host: str | None = None) -> Report:
    def per_host(call: HostCall) -> list[Row]:
        def read() -> list[Row]:
            snaps = [SnapshotRecord.parse(call.host, o) for o in call.run(checkpoints_pipeline(vm))]
            return [{"host": s.host, "vm": s.vm_name, "name": s.name, "type": s.snapshot_type,
                     "created": s.creation_time.isoformat() if s.creation_time else None, "parent": s.parent_name}
                    for s in snaps]

        return _missing_is_empty(read)

    return _report("checkpoints", CHECKPOINT_COLUMNS, fleet.fan_out(per_host, fleet.select(host)), vm)


# -- the pipelines each lookup sends ---------------------------------------------------------------


def vms_pipeline(name: str | None = None) -> Pipeline:
    return single("Get-VM", Name=_names(name))


def memory_pipeline(vm: str | None = None) -> Pipeline:
    return pipeline(command("Get-VM", Name=_names(vm)), command("Get-VMMemory", piped=True))


def teaming_pipeline(vm: str | None = None) -> Pipeline:
    if vm is not None:
        return single("Get-VMNetworkAdapter", VMName=[vm])
    return pipeline(command("Get-VM"), command("Get-VMNetworkAdapter", piped=True))


def checkpoints_pipeline(vm: str) -> Pipeline:
    return single("Get-VMSnapshot", VMName=[vm])


# -- helpers ---------------------------------------------------------------------------------------


def _vms(call: HostCall, name: str | None = None) -> list[VmRecord]:
    return [VmRecord.parse(call.host, o) for o in call.run(vms_pipeline(name))]


def _names(name: str | None) -> list[str] | None:
    return None if name is None else [name]


def is_vm_not_found(err: HyperVError) -> bool:
    """Hyper-V reports a missing VM as an error record; on a fan-out it only means "not on this host"."""
    if not isinstance(err, PowerShellError):
        return False
    return any(d.category == "ObjectNotFound" or "unable to find a virtual machine" in d.message.lower()
               for d in err.details)


def _missing_is_empty(fn: Callable[[], list[T]]) -> list[T]:
    try:
        return fn()
    except PowerShellError as err:
        if is_vm_not_found(err):
            return []
        raise


def _vm_row(v: VmRecord) -> Row:
    return {"host": v.host, "vm": v.name, "state": v.state, "uptime_s": v.uptime_s, "cpu_usage": v.cpu_usage,
            "processors": v.processor_count, "memory_assigned": v.memory_assigned,
            "memory_demand": v.memory_demand, "replication_mode": v.replication_mode,
            "replication_state": v.replication_state, "replication_health": v.replication_health}


def _memory_row(v: VmRecord, m: MemoryRecord | None) -> Row:
    assigned, demand = v.memory_assigned, v.memory_demand
    maximum = m.maximum if m and m.maximum is not None else v.memory_maximum
    dynamic = m.dynamic if m and m.dynamic is not None else v.dynamic_memory
    # Pressure as Hyper-V Manager shows it: demand as a percentage of assigned memory.
    # At its maximum: dynamic memory on and assigned has reached MemoryMaximum, the cap on what Hyper-V assigns,
    # so it cannot add more. Demand alone is the guest's wish: it can pass the maximum while
    # assigned is still below it (the host is short of memory), which is a host problem, not this VM's ceiling.
    pressure = round(demand * 100 / assigned) if assigned and demand is not None else None
    return {"host": v.host, "vm": v.name, "dynamic": dynamic,
            "startup": m.startup if m and m.startup is not None else v.memory_startup,
            "minimum": m.minimum if m and m.minimum is not None else v.memory_minimum, "maximum": maximum,
            "buffer": m.buffer if m else None, "priority": m.priority if m else None, "assigned": assigned,
            "demand": demand, "pressure_pct": pressure,
            "at_maximum": bool(dynamic and maximum and assigned is not None and assigned >= maximum)}


def _over_maximum(row: Row) -> tuple[float, str, str]:
    """Worst first: the VM whose demand exceeds its maximum by the most (demand / maximum), then by name."""
    demand, maximum = row.get("demand"), row.get("maximum")
    ratio = demand / maximum if isinstance(demand, int) and isinstance(maximum, int) and maximum > 0 else 0.0
    return -ratio, str(row.get("host", "")), str(row.get("vm", ""))


@dataclass(frozen=True)
class _Targets:
    names: tuple[str, ...]
    addresses: frozenset[Any]
    networks: tuple[Any, ...]


def parse_targets(targets: Sequence[str]) -> _Targets:
    names: list[str] = []
    addresses: set[Any] = set()
    networks: list[Any] = []
    for raw in (t.strip() for t in targets):
        if not raw:
            continue
        try:
            if "/" in raw:
                networks.append(ipaddress.ip_network(raw, strict=False))
            else:
                addresses.add(ipaddress.ip_address(raw))
            continue
        except ValueError:
            names.append(raw)  # not an address or prefix: a VM name, possibly with wildcards
    return _Targets(tuple(names), frozenset(addresses), tuple(networks))


def _target_matcher(targets: Sequence[str]) -> Callable[[NetAdapterRecord], bool]:
    parsed = parse_targets(targets)
    if not (parsed.names or parsed.addresses or parsed.networks):
        return lambda _a: True

    def match(a: NetAdapterRecord) -> bool:
        if any(fnmatch.fnmatchcase(a.vm_name.lower(), n.lower()) for n in parsed.names):
            return True
        for text in a.ip_addresses:
            try:
                ip = ipaddress.ip_address(text.split("%", 1)[0])
            except ValueError:
                continue
            if ip in parsed.addresses or any(ip.version == n.version and ip in n for n in parsed.networks):
                return True
        return False

    return match


def _report(kind: str, columns: list[str], result: FanOut[list[Row]], wanted: str | None = None) -> Report:
    rows = [row for rows in result.results.values() for row in sorted(rows, key=lambda r: str(r.get("vm", "")))]
    report = Report(kind=kind, columns=list(columns), rows=rows, errors=result.error_dicts(),
                    hosts_ok=result.hosts_ok)
    if wanted is not None and not rows and result.hosts_ok:
        report.errors.append({"host": "", "kind": "not_found",
                              "message": f"no VM matching {wanted!r} on {', '.join(result.hosts_ok)}."})
    return report
