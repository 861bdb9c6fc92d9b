"""Model-level control actions behind ``Fleet.apply_control`` (called with the fleet lock held).

Each action takes plain JSON-able args and returns a JSON-able summary; bad input raises ValueError with a
sentence saying what was wrong.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from lab import backup_controls, replication, timeline
from lab.model import Fleet, Host, check_enum


def _require(args: dict[str, Any], *names: str) -> None:
    missing = [n for n in names if n not in args]
    if missing:
        raise ValueError(f"missing argument(s): {', '.join(missing)}")


def _vm_state(fleet: Fleet, args: dict[str, Any]) -> dict[str, Any]:
    _require(args, "host", "vm", "state")
    vm = fleet.vm(args["host"], args["vm"])
    state = check_enum("VMState", str(args["state"]))
    if state in ("Running", "Paused") and not vm.running:
        vm.started_at = fleet.clock()
    if state not in ("Running", "Paused"):
        vm.started_at = None
        vm.broken = False
    vm.state = state
    return {"host": args["host"], "vm": vm.name, "state": vm.state}


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _replication(fleet: Fleet, args: dict[str, Any]) -> dict[str, Any]:
    _require(args, "host", "vm")
    vm = fleet.vm(args["host"], args["vm"])
    rep = vm.replication
    if rep is None:
        raise ValueError(f"VM {vm.name!r} on {args['host']} is not replicated")
    if "state" in args:
        rep.state = check_enum("VMReplicationState", str(args["state"]))
    if "health" in args:
        rep.health = check_enum("VMReplicationHealthState", str(args["health"]))
    if "mode" in args:
        rep.mode = check_enum("VMReplicationMode", str(args["mode"]))
    for key in ("last_replication_time", "last_applied_log_time"):
        if key in args:
            setattr(rep, key, _time(args[key]))
    if "health_details" in args:
        rep.health_details = [str(x) for x in args["health_details"]]
    if "resync_seconds" in args:
        rep.resync_seconds = float(args["resync_seconds"])
    known = {"host", "vm", "state", "health", "mode", "last_replication_time", "last_applied_log_time",
             "health_details", "resync_seconds"}
    unknown = sorted(set(args) - known)
    if unknown:
        raise ValueError(f"unknown replication field(s): {', '.join(unknown)}")
    return {"host": args["host"], "vm": vm.name, "mode": rep.mode, "state": rep.state, "health": rep.health}


def _hosts(fleet: Fleet, args: dict[str, Any]) -> list[Host]:
    """The host named by ``host``, or every host of ``site``: a site loses power all at once."""
    if ("host" in args) == ("site" in args):
        raise ValueError("give either host or site")
    if "host" in args:
        return [fleet.host(args["host"])]
    hosts = [h for h in fleet.hosts.values() if h.site.lower() == str(args["site"]).lower()]
    if not hosts:
        sites = sorted({h.site for h in fleet.hosts.values()})
        raise ValueError(f"no site named {args['site']!r} (sites: {', '.join(sites)})")
    return hosts


def _per_site(args: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    return results[0] if "host" in args else {"site": args["site"], "hosts": results}


def _power_loss(fleet: Fleet, args: dict[str, Any]) -> dict[str, Any]:
    return _per_site(args, [replication.power_loss(fleet, h) for h in _hosts(fleet, args)])


def _recover(fleet: Fleet, args: dict[str, Any]) -> dict[str, Any]:
    broken = list(args.get("broken", []))
    return _per_site(args, [replication.recover(fleet, h, broken=broken) for h in _hosts(fleet, args)])


def locate(fleet: Fleet, name: str) -> str:
    """The host of the VM named ``name`` that is not a replica copy (the one that runs), for controls given no host."""
    found = [(h.name, v) for h in fleet.hosts.values() for v in h.vms_named(name) if v.test_of is None]
    if not found:
        raise ValueError(f"no VM named {name!r} on any host")
    own = [h for h, v in found if v.replication is None or v.replication.mode != "Replica"]
    hosts = own or [h for h, _ in found]
    if len(hosts) > 1:
        raise ValueError(f"VM {name!r} is on several hosts ({', '.join(hosts)}): name the host")
    return hosts[0]


def _vms(fleet: Fleet, args: dict[str, Any]) -> dict[str, Any]:
    """Read-only: every copy of the VM named ``vm`` (or every VM) with its state, heartbeat and replication."""
    unknown = sorted(set(args) - {"vm", "host"})
    if unknown:
        raise ValueError(f"unknown vms field(s): {', '.join(unknown)} (known: vm, host)")
    now, name, rows = fleet.clock(), args.get("vm"), []
    hosts = [fleet.host(args["host"])] if "host" in args else list(fleet.hosts.values())
    for host in hosts:
        for vm in host.vms_named(str(name)) if name else host.vms:
            rep = vm.replication
            rows.append({"host": host.name, "vm": vm.name, "state": vm.state, "heartbeat": vm.heartbeat(now),
                         "mode": rep.mode if rep else None, "replication_state": rep.state if rep else None,
                         "health": rep.health if rep else None, "powered": bool(getattr(host, "powered", True))})
    return {"vms": rows}


def _heartbeat(fleet: Fleet, args: dict[str, Any]) -> dict[str, Any]:
    """A guest that never answers (``never: true``), or one that takes ``boot_seconds`` to boot from its start.
    Without ``host``, the VM's own copy (not a replica) is found by name."""
    _require(args, "vm")
    if "host" not in args:
        args = dict(args, host=locate(fleet, str(args["vm"])))
    vm = fleet.vm(args["host"], args["vm"])
    unknown = sorted(set(args) - {"host", "vm", "never", "boot_seconds"})
    if unknown:
        raise ValueError(f"unknown heartbeat field(s): {', '.join(unknown)} (known: never, boot_seconds)")
    if "never" in args:
        vm.never_heartbeat = bool(args["never"])
    if "boot_seconds" in args:
        seconds = float(args["boot_seconds"])
        if seconds < 0:
            raise ValueError("boot_seconds must be 0 or more")
        vm.boot_seconds = seconds
    return {"host": args["host"], "vm": vm.name, "never": vm.never_heartbeat, "boot_seconds": vm.boot_seconds,
            "heartbeat": vm.heartbeat(fleet.clock())}


def _broken(fleet: Fleet, args: dict[str, Any]) -> dict[str, Any]:
    _require(args, "host", "vm")
    vm = fleet.vm(args["host"], args["vm"])
    replication.mark_broken(fleet, vm, bool(args.get("broken", True)))
    return {"host": args["host"], "vm": vm.name, "broken": vm.broken, "state": vm.state}


def _replica_server(fleet: Fleet, args: dict[str, Any]) -> dict[str, Any]:
    """Whether the host is configured as a Replica server (Get-VMReplicationServer ReplicationEnabled)."""
    _require(args, "host")
    host = fleet.host(args["host"])
    host.replica_server_enabled = bool(args.get("enabled", True))
    return {"host": host.name, "replication_enabled": host.replica_server_enabled}


def _remove_replication(fleet: Fleet, args: dict[str, Any]) -> dict[str, Any]:
    """One side drops the relationship (as Remove-VMReplication there would); the other side keeps its own."""
    _require(args, "host", "vm")
    vm = fleet.vm(args["host"], args["vm"])
    vm.replication = vm.extended = None
    return {"host": args["host"], "vm": vm.name, "replicated": False}


def _delete_vm(fleet: Fleet, args: dict[str, Any]) -> dict[str, Any]:
    _require(args, "host", "vm")
    host, vm = fleet.host(args["host"]), fleet.vm(args["host"], args["vm"])
    host.vms = [v for v in host.vms if v.id != vm.id]
    return {"host": host.name, "vm": vm.name, "deleted": True}


def _integration(fleet: Fleet, args: dict[str, Any]) -> dict[str, Any]:
    """Enable or disable the guest's Shutdown integration service (Stop-VM then has to ask before turning off)."""
    _require(args, "host", "vm", "shutdown")
    vm = fleet.vm(args["host"], args["vm"])
    vm.shutdown_service = bool(args["shutdown"])
    return {"host": args["host"], "vm": vm.name, "shutdown": vm.shutdown_service}


ACTIONS: dict[str, Callable[[Fleet, dict[str, Any]], dict[str, Any]]] = {
    "vm_state": _vm_state,
    "replication": _replication,
    "power_loss": _power_loss,
    "recover": _recover,
    "heartbeat": _heartbeat,
    "vms": _vms,
    "broken": _broken,
    "replica_server": _replica_server,
    "remove_replication": _remove_replication,
    "delete_vm": _delete_vm,
    "integration_service": _integration,
    **backup_controls.ACTIONS,
}


def apply(fleet: Fleet, action: str, args: dict[str, Any]) -> dict[str, Any]:
    handler = ACTIONS.get(action)
    if handler is None:
        raise ValueError(f"unknown control action {action!r} (known: {', '.join(sorted(ACTIONS))})")
    timeline.tick(fleet)  # act on the model as of the fleet clock
    return handler(fleet, args)
