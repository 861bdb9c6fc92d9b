"""The replicated VMs as the answering hosts report them now, for resolving a scope (preview, drills)."""

from __future__ import annotations

from jobs.hyperv.commands import single
from jobs.hyperv.fleet import Fleet, HostCall
from jobs.hyperv.records import as_str, enum_name, prop
from jobs.recovery.resolve import ReplicaPair


def live_pairs(fleet: Fleet) -> list[ReplicaPair]:
    """Every replicated VM as the answering hosts report it now (the primary side may be dark: its replica host
    still names it). Live rather than the last sweep: a preview must not act on a picture minutes old."""
    out = fleet.fan_out(lambda call: _relationships(fleet, call))
    pairs: dict[str, ReplicaPair] = {}
    for host, found in sorted(out.results.items()):
        for vm, primary, replica in found:
            known = pairs.get(vm.lower())
            if replica and (known is None or (known.primary_host is None and primary)):
                pairs[vm.lower()] = ReplicaPair(vm, primary, replica, seen_on=host)
    return list(pairs.values())


def _relationships(fleet: Fleet, call: HostCall) -> list[tuple[str, str | None, str | None]]:
    out: list[tuple[str, str | None, str | None]] = []
    for obj in call.run(single("Get-VMReplication", ReplicationRelationshipType="Simple")):
        if enum_name(prop(obj, "ReplicationMode")) in ("TestReplica", "ExtendedReplica"):
            continue  # a test copy, or the far end of an extended chain: the VM is counted by its own pair
        out.append((as_str(prop(obj, "VMName")) or "", _short(fleet, as_str(prop(obj, "PrimaryServerName"))),
                    _short(fleet, as_str(prop(obj, "ReplicaServerName")))))
    return out


def _short(fleet: Fleet, server: str | None) -> str | None:
    for name in (server, (server or "").split(".")[0]):
        try:
            return fleet.inventory.host(name).name if name else None
        except KeyError:
            continue
    return None
