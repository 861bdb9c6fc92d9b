"""Control actions for Replica-VM backups and exports, registered in ``lab.controls.ACTIONS``.

``backup_condition`` {host, vm, condition, on=true, ...}: sets (or with ``on: false`` clears) one observable
condition of hyperv.md §4 on a replicated VM; ``vm`` may name either side, the change lands where Hyper-V
shows it. Conditions:

- ``log_apply`` (condition 1): log-apply cycles on the replica at its replication frequency (``apply_seconds``,
  default a fifth of the frequency); see ``lab.timeline``.
- ``apply_failed`` (condition 3, inference): replica ReplicationState Error, health Critical.
- ``health_critical`` (condition 4): replica health Critical with a health detail.
- ``resync_required`` (condition 5): primary WaitingForStartResynchronize + Critical; the simple replica shows
  Disabled + Critical (WMI "waiting to start resync" maps to Disabled there, §3.2).
- ``resync_in_progress`` (condition 5): both sides Resynchronizing for ``seconds`` (default the relationship's
  ``resync_seconds``) on the fleet clock, then Replicating.
- ``migration`` (condition 6): the replica VM's OperationalStatus gains ``status`` (default MigratingVirtualMachine).
- ``initial_replication`` (condition 7): replica WaitingForInitialReplication, primary InitialReplicationInProgress,
  both Warning, no LastReplicationTime.
- ``failover`` (condition 8): replica ReplicationState ``state`` (RecoveryInProgress by default,
  FailedOverWaitingCompletion or FiredrillInProgress).
- ``test_vm`` (condition 8): a test-failover VM exists (as Start-VMFailover -AsTest makes it); clearing removes it.

Condition 2 (previous apply cancelled/interrupted) has no public observable (§4), so the lab has none.

``fail_next`` {host, cmdlet, vm?, count=1, message?, category?, after_steps=0}: the next ``count`` calls of
Export-VMSnapshot, Resume-VMReplication or Start-VMFailover on that host (and VM) write a Hyper-V error record
instead.
``export_timing`` {seconds, steps}; ``exports`` lists Export-VMSnapshot runs; ``clock`` {freeze: ISO time or
true, advance_s, real: true} swaps the fleet clock for deterministic remote tests.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from lab import replication, timeline
from lab.clock import ManualClock, utc_now
from lab.model import VM, Fleet, Host, Injection, Replication

MIGRATION = ("MigratingVirtualMachine", "StorageMigrationPhaseOne", "StorageMigrationPhaseTwo", "MigratingPlannedVm")
FAILOVER = ("RecoveryInProgress", "FailedOverWaitingCompletion", "FiredrillInProgress")
INJECTABLE = ("Export-VMSnapshot", "Resume-VMReplication", "Start-VMFailover")
CRITICAL_TEXT = "Hyper-V cannot replicate changes for virtual machine '{0}': replication is in a critical state."
APPLY_FAILED_TEXT = "Hyper-V failed to apply the replication log for virtual machine '{0}'."  # UNCONFIRMED
RESYNC_REQUIRED_TEXT = "Resynchronization is required for virtual machine '{0}'."


class Pair:
    """Both sides of one replica relationship, found from either side."""

    def __init__(self, fleet: Fleet, host: Host, vm: VM) -> None:
        if vm.replication is None:
            raise ValueError(f"VM {vm.name!r} on {host.name} is not replicated")
        partner = fleet.partner(host, vm)
        if vm.replication.mode == "Replica":
            self.replica_host, self.replica = host, vm
            self.primary_host, self.primary = partner if partner else (None, None)
        elif partner is not None:
            self.primary_host, self.primary = host, vm
            self.replica_host, self.replica = partner
        else:
            raise ValueError(f"VM {vm.name!r} on {host.name} has no replica VM in the lab")

    @property
    def rr(self) -> Replication:
        assert self.replica.replication is not None
        return self.replica.replication

    @property
    def pr(self) -> Replication | None:
        return self.primary.replication if self.primary is not None else None

    def set_both(self, state: str, health: str, *details: str) -> None:
        for rep in (self.rr, self.pr):
            if rep is not None:
                rep.state, rep.health, rep.health_details = state, health, list(details)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"replica": {"host": self.replica_host.name, "state": self.rr.state,
                                           "health": self.rr.health}}
        if self.pr is not None and self.primary_host is not None:
            out["primary"] = {"host": self.primary_host.name, "state": self.pr.state, "health": self.pr.health}
        return out


def _healthy(fleet: Fleet, pair: Pair) -> None:
    pair.set_both("Replicating", "Normal")
    now = fleet.clock()
    for rep in (pair.rr, pair.pr):
        if rep is not None:
            rep.last_replication_time = rep.last_applied_log_time = now


def _log_apply(fleet: Fleet, pair: Pair, on: bool, args: dict[str, Any]) -> None:
    if not on:
        timeline.finish_apply(pair.rr)
        pair.rr.log_apply = None
        return
    seconds = float(args.get("apply_seconds", pair.rr.frequency_sec / 5))
    timeline.enable_log_apply(pair.rr, fleet.clock(), seconds)


def _apply_failed(fleet: Fleet, pair: Pair, on: bool, args: dict[str, Any]) -> None:
    if on:
        timeline.finish_apply(pair.rr)
        pair.rr.state, pair.rr.health = "Error", "Critical"
        pair.rr.health_details = [APPLY_FAILED_TEXT.format(pair.replica.name)]
    else:
        _healthy(fleet, pair)


def _health_critical(fleet: Fleet, pair: Pair, on: bool, args: dict[str, Any]) -> None:
    pair.rr.health = "Critical" if on else "Normal"
    pair.rr.health_details = [CRITICAL_TEXT.format(pair.replica.name)] if on else []


def _resync_required(fleet: Fleet, pair: Pair, on: bool, args: dict[str, Any]) -> None:
    if not on:
        _healthy(fleet, pair)
        return
    text = RESYNC_REQUIRED_TEXT.format(pair.replica.name)
    timeline.finish_apply(pair.rr)
    pair.rr.state, pair.rr.health, pair.rr.health_details = "Disabled", "Critical", [text]
    if pair.pr is not None:
        pair.pr.state, pair.pr.health, pair.pr.health_details = "WaitingForStartResynchronize", "Critical", [text]


def _resync_in_progress(fleet: Fleet, pair: Pair, on: bool, args: dict[str, Any]) -> None:
    if not on:
        timeline.finish_resync(fleet, pair.replica_host, pair.replica, fleet.clock())
        return
    if "seconds" in args:
        for rep in (pair.rr, pair.pr):
            if rep is not None:
                rep.resync_seconds = float(args["seconds"])
    timeline.start_resync(fleet, pair.replica_host, pair.replica, fleet.clock())


def _migration(fleet: Fleet, pair: Pair, on: bool, args: dict[str, Any]) -> None:
    status = str(args.get("status", MIGRATION[0]))
    if status not in MIGRATION:
        raise ValueError(f"status must be one of {', '.join(MIGRATION)}")
    pair.replica.secondary_status = status if on else None


def _initial_replication(fleet: Fleet, pair: Pair, on: bool, args: dict[str, Any]) -> None:
    if not on:
        _healthy(fleet, pair)
        return
    timeline.finish_apply(pair.rr)
    pair.rr.state, pair.rr.health = "WaitingForInitialReplication", "Warning"
    if pair.pr is not None:
        pair.pr.state, pair.pr.health = "InitialReplicationInProgress", "Warning"
    for rep in (pair.rr, pair.pr):
        if rep is not None:
            rep.last_replication_time = rep.last_applied_log_time = None
            rep.health_details = [f"Initial replication is not complete for virtual machine '{pair.replica.name}'."]


def _failover(fleet: Fleet, pair: Pair, on: bool, args: dict[str, Any]) -> None:
    if not on:
        pair.rr.state, pair.rr.health, pair.rr.health_details = "Replicating", "Normal", []
        return
    state = str(args.get("state", FAILOVER[0]))
    if state not in FAILOVER:
        raise ValueError(f"state must be one of {', '.join(FAILOVER)}")
    timeline.finish_apply(pair.rr)
    pair.rr.state = state
    if state == "FailedOverWaitingCompletion":
        pair.rr.health = "Warning"
        pair.rr.health_details = [f"Failover is in progress for virtual machine '{pair.replica.name}'."]


def _test_vm(fleet: Fleet, pair: Pair, on: bool, args: dict[str, Any]) -> None:
    try:
        if on:
            replication.test_failover(fleet, pair.replica_host, pair.replica)
        elif pair.rr.test_vm_id is not None:
            replication.stop_failover(fleet, pair.replica_host, pair.replica)
    except replication.ReplicationError as exc:
        raise ValueError(exc.message) from None


CONDITIONS: dict[str, Callable[[Fleet, Pair, bool, dict[str, Any]], None]] = {
    "log_apply": _log_apply, "apply_failed": _apply_failed, "health_critical": _health_critical,
    "resync_required": _resync_required, "resync_in_progress": _resync_in_progress, "migration": _migration,
    "initial_replication": _initial_replication, "failover": _failover, "test_vm": _test_vm,
}


def backup_condition(fleet: Fleet, args: dict[str, Any]) -> dict[str, Any]:
    for name in ("host", "vm", "condition"):
        if name not in args:
            raise ValueError(f"missing argument: {name}")
    handler = CONDITIONS.get(str(args["condition"]))
    if handler is None:
        raise ValueError(f"unknown condition {args['condition']!r} (known: {', '.join(sorted(CONDITIONS))})")
    host = fleet.host(str(args["host"]))
    pair = Pair(fleet, host, fleet.vm(host.name, str(args["vm"])))
    on = bool(args.get("on", True))
    handler(fleet, pair, on, args)
    timeline.tick(fleet)
    return {"vm": pair.replica.name, "condition": args["condition"], "on": on, **pair.summary()}


def fail_next(fleet: Fleet, args: dict[str, Any]) -> dict[str, Any]:
    if "host" not in args or "cmdlet" not in args:
        raise ValueError("missing argument(s): host and cmdlet")
    cmdlet = next((c for c in INJECTABLE if c.lower() == str(args["cmdlet"]).lower()), None)
    if cmdlet is None:
        raise ValueError(f"cmdlet must be one of {', '.join(INJECTABLE)}")
    host = fleet.host(str(args["host"]))
    vm = str(args["vm"]) if args.get("vm") else None
    if vm is not None:
        fleet.vm(host.name, vm)  # must exist
    count = int(args.get("count", 1))
    if count < 1:
        raise ValueError("count must be at least 1")
    fleet.injections.append(Injection(cmdlet, host.name, vm, count, args.get("message"), args.get("category"),
                                      int(args.get("after_steps", 0))))
    return {"host": host.name, "vm": vm, "cmdlet": cmdlet, "count": count}


def export_timing(fleet: Fleet, args: dict[str, Any]) -> dict[str, Any]:
    seconds, steps = float(args.get("seconds", fleet.export_seconds)), int(args.get("steps", fleet.export_steps))
    if seconds < 0 or steps < 1:
        raise ValueError("seconds must be >= 0 and steps >= 1")
    fleet.export_seconds, fleet.export_steps = seconds, steps
    return {"seconds": seconds, "steps": steps}


def exports(fleet: Fleet, args: dict[str, Any]) -> dict[str, Any]:
    return {"exports": [{"host": e.host, "vm": e.vm, "checkpoint": e.checkpoint, "path": e.path,
                         "status": e.status, "percent": e.percent, "error": e.error} for e in fleet.exports]}


def clock(fleet: Fleet, args: dict[str, Any]) -> dict[str, Any]:
    if args.get("real"):
        fleet.clock = utc_now
    elif "freeze" in args:
        when = args["freeze"]
        fleet.clock = ManualClock(None if when is True else datetime.fromisoformat(str(when)))
    if "advance_s" in args:
        if not isinstance(fleet.clock, ManualClock):
            raise ValueError("freeze the clock before advancing it")
        fleet.clock.advance(float(args["advance_s"]))
    timeline.tick(fleet)
    return {"now": fleet.clock().isoformat(), "manual": isinstance(fleet.clock, ManualClock)}


ACTIONS: dict[str, Callable[[Fleet, dict[str, Any]], dict[str, Any]]] = {
    "backup_condition": backup_condition, "fail_next": fail_next, "export_timing": export_timing,
    "exports": exports, "clock": clock,
}
