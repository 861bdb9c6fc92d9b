"""Failover step plans built from replication facts: planned, unplanned, test, cancel, complete, reverse.

Pure: facts in, a numbered plan out (or ``PlanRefused`` with the reasons). Each step carries the host it runs
on, the cmdlet and parameters (official names, hyperv.md §1.3-1.7), a precondition checked on fresh facts
before it runs and an expectation checked after. Executing a plan and filling the facts live elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs import units
from jobs.failover.facts import (  # re-exported: the facts are part of this module's interface
    BAD_HEARTBEATS,
    FAILED_OVER_STATES,
    FAILOVER_STATES,
    RECOVERY_POINT_TYPES,
    TEST_REFUSED_STATES,
    Check,
    RecoveryPoint,
    ReplicationFacts,
    SideFacts,
    health_is,
    looks_broken,
    mode_is,
    no_test_vm,
    received_replication,
    state_in,
    vm_is,
)
from jobs.failover.steps import Kind, PipedInput, Plan, PlanRefused, Step, _Builder, describe

__all__ = [
    "BAD_HEARTBEATS", "Check", "Kind", "PipedInput", "Plan", "PlanRefused", "RecoveryPoint",
    "Recommendation", "ReplicationFacts", "SideFacts", "Step", "build_plan", "describe", "recommend",
]


def _reachable(side: SideFacts, role: str, reasons: list[str]) -> bool:
    """The host answered and its VM's replication could be read; otherwise a reason says which it was."""
    if not side.reachable:
        reasons.append(f"the {role} host {side.host} does not answer")
    elif side.problem:
        reasons.append(f"on the {role} host, {side.problem}")
    return side.reachable and not side.problem


def _extended_refusal(side: SideFacts, back_to: str, vm: str) -> str:
    """hyperv.md §1.7: a VM has one replica, so it cannot replicate back while it extends to a third server."""
    return (f"{side.host} also replicates {vm} to {side.extended_to} (extended replication), and a VM has only one "
            f"replica, so replication could not be reversed back to {back_to}. Either remove the extended "
            f"replication on {side.host} (Remove-VMReplication -VMName {vm} -ReplicationRelationshipType Extended) "
            f"and ask again, or fail over without reversing (`failover {vm} unplanned`; changes since the last "
            f"replication are lost) and keep replicating to {side.extended_to}")


def _failover_gate(replica: SideFacts, vm: str, reasons: list[str], *, test: bool) -> None:
    """Replica-side preconditions of Start-VMFailover (hyperv.md §1.4, §1.5)."""
    if not _reachable(replica, "replica", reasons):
        return
    if replica.mode != "Replica":
        reasons.append(f"{vm} on {replica.host} is not a replica (mode {replica.mode})")
    if replica.vm_state != "Off":
        reasons.append(f"the replica VM on {replica.host} must be Off (it is {replica.vm_state})")
    allowed = FAILOVER_STATES - TEST_REFUSED_STATES if test else FAILOVER_STATES
    if replica.state not in allowed:
        reasons.append(f"replication state on {replica.host} is {replica.state}; "
                       f"failover needs {' or '.join(sorted(allowed))}")
    if replica.last_replication is None:
        reasons.append(f"the replica on {replica.host} has not received any replication yet")
    if test and replica.test_vm_present:
        reasons.append(f"a test failover VM of {vm} already exists on {replica.host} (only one at a time)")


def resolve_point(facts: ReplicationFacts, point: str, kind: Kind = Kind.UNPLANNED) -> RecoveryPoint:
    """The replica's recovery point named (or with the id) ``point``; PlanRefused when it is not one."""
    points = facts.replica.recovery_points
    valid = [p for p in points if point in (p.name, p.id) and p.snapshot_type in RECOVERY_POINT_TYPES]
    if not valid:  # the Hyper-V error text, hyperv.md §1.4
        raise PlanRefused(kind, facts.vm, [f"'{point}' is not a valid recovery snapshot of '{facts.vm}'"])
    # The step selects the point by name (Get-VMSnapshot -VMName -Name), so the name must be unique.
    if sum(1 for p in points if p.name == valid[0].name) > 1:
        raise PlanRefused(kind, facts.vm, [f"several snapshots of {facts.vm} are named '{valid[0].name}'; "
                                           "rename them before failing over to one"])
    return valid[0]


def latest_point(side: SideFacts) -> RecoveryPoint | None:
    points = [p for p in side.recovery_points if p.snapshot_type in RECOVERY_POINT_TYPES]
    return max(points, key=lambda p: p.creation_time, default=None)


def _start_failover(b: _Builder, host: str, point: RecoveryPoint | None, *, test: bool,
                    pre: tuple[Check, ...], post: tuple[Check, ...]) -> None:
    """Start-VMFailover on the replica: latest point by -VMName, a chosen point piped from Get-VMSnapshot."""
    extra = {"AsTest": True} if test else {}
    what = "Start a test failover" if test else "Fail over the replica"
    if point is None:
        b.add(host, f"{what} (latest recovery point)", "Start-VMFailover", {"VMName": b.vm} | extra,
              pre=pre, post=post)
        return
    piped = PipedInput("Get-VMSnapshot", {"VMName": b.vm, "Name": point.name}, binds_to="VMRecoverySnapshot")
    b.add(host, f"{what} to recovery point '{point.name}'", "Start-VMFailover", extra,
          pre=pre, post=post, piped=piped)


def _no_shutdown(p: SideFacts, vm: str) -> str:
    """hyperv.md §1 Stop-VM: without the guest's Shutdown service, Stop-VM asks to turn the VM off, and a remote
    session cannot answer, so the plan's first step would fail."""
    return (f"the guest's Shutdown integration service on {p.host} is {p.shutdown_service}, so {vm} cannot be shut "
            f"down cleanly from here (Stop-VM would ask whether to turn it off, and a remote session cannot answer). "
            f"Either turn it off yourself (Stop-VM -Name {vm} -TurnOff on {p.host}; unsaved guest data is lost) and "
            f"ask again, or run an unplanned failover (`failover {vm} unplanned`) and leave the primary as it is")


def _can_shut_down(host: str) -> Check:
    return Check(host, "the guest's Shutdown integration service is not reported unavailable",
                 lambda s: s.shutdown_service in ("Ok", None))


def plan_planned(facts: ReplicationFacts) -> Plan:
    """hyperv.md §1.3: stop, prepare on the primary, fail over and reverse on the replica, start there."""
    p, r, vm = facts.primary, facts.replica, facts.vm
    reasons: list[str] = []
    if _reachable(p, "primary", reasons):
        if p.mode != "Primary":
            reasons.append(f"{vm} on {p.host} is not the primary (mode {p.mode})")
        if p.health != "Normal":
            reasons.append(f"planned failover needs replication health Normal; {p.host} reports {p.health}")
        if p.state != "Replicating":
            reasons.append(f"planned failover needs state Replicating on {p.host}; it is {p.state}")
        if p.vm_state not in ("Running", "Off"):
            reasons.append(f"the primary VM must be Running or Off to shut it down (it is {p.vm_state})")
        if (broken := looks_broken(p)) is not None:
            reasons.append(f"{broken}: a planned failover would copy its state to the replica; use unplanned")
        elif p.vm_state == "Running" and p.shutdown_service not in ("Ok", None):
            reasons.append(_no_shutdown(p, vm))
        if p.replica_server_enabled is False:
            reasons.append(f"{p.host} is not configured as a Replica server, so replication could not run back to "
                           f"it and {vm} would be left down after the failover. Enable it as a Replica server "
                           f"(Hyper-V Settings > Replication Configuration, or Set-VMReplicationServer "
                           f"-ReplicationEnabled $true on {p.host}) and ask again")
    _failover_gate(r, vm, reasons, test=False)
    if r.reachable and r.extended_to:
        reasons.append(_extended_refusal(r, p.host, vm))
    if reasons:
        raise PlanRefused(Kind.PLANNED, vm, reasons)
    b = _Builder(vm)
    if p.vm_state == "Running":
        b.add(p.host, "Shut down the primary VM", "Stop-VM", {"Name": vm},
              pre=(vm_is(p.host, "Running"), mode_is(p.host, "Primary"), health_is(p.host, "Normal"),
                   _can_shut_down(p.host)),
              post=(vm_is(p.host, "Off"),))
    b.add(p.host, "Prepare the primary: send the remaining changes", "Start-VMFailover",
          {"VMName": vm, "Prepare": True},
          pre=(vm_is(p.host, "Off"), state_in(p.host, {"Replicating"})),
          post=(state_in(p.host, {"PreparedForFailover"}),))
    _start_failover(b, r.host, None, test=False,
                    pre=(vm_is(r.host, "Off"), mode_is(r.host, "Replica"), state_in(r.host, FAILOVER_STATES),
                         received_replication(r.host), state_in(p.host, {"PreparedForFailover"})),
                    post=(state_in(r.host, {"FailedOverWaitingCompletion"}),))
    _add_reverse_after_planned(b, r.host, p.host)
    b.add(r.host, "Start the VM on the new primary", "Start-VM", {"Name": vm},
          pre=(vm_is(r.host, "Off"), mode_is(r.host, "Primary")), post=(vm_is(r.host, "Running"),))
    warn = () if p.replica_server_enabled else (
        f"could not confirm that {p.host} is a Replica server; reverse replication needs it",)
    if p.vm_state == "Running" and p.shutdown_service is None:
        warn += (f"could not confirm that the guest's Shutdown integration service answers on {p.host}; "
                 "if it does not, the shut-down step fails and nothing else runs",)
    return Plan(Kind.PLANNED, vm, tuple(b.steps), warn)


def _add_reverse_after_planned(b: _Builder, new_primary: str, old_primary: str) -> None:
    b.add(new_primary, "Reverse replication towards the old primary", "Set-VMReplication",
          {"VMName": b.vm, "Reverse": True},
          pre=(mode_is(new_primary, "Replica"), state_in(new_primary, {"FailedOverWaitingCompletion"}),
               state_in(old_primary, {"PreparedForFailover"})),
          post=(mode_is(new_primary, "Primary"), state_in(new_primary, {"Replicating"}),
                mode_is(old_primary, "Replica")))


def interrupted_before_start(facts: ReplicationFacts) -> bool:
    """An unplanned failover whose Start-VMFailover ran but whose Start-VM did not (a worker killed between them, or a
    start that failed): the replica waits for completion with its VM Off, and no planned failover is half-done on
    the primary. Finishing it is the start alone; failing over again is refused by Hyper-V in that state."""
    r, p = facts.replica, facts.primary
    return (r.reachable and r.mode == "Replica" and r.state == "FailedOverWaitingCompletion" and r.vm_state == "Off"
            and not r.test_vm_present and not (p.reachable and p.state == "PreparedForFailover"))


def _plan_start_only(facts: ReplicationFacts) -> Plan:
    r, vm = facts.replica, facts.vm
    b = _Builder(vm)
    b.add(r.host, "Start the failed-over VM on the replica", "Start-VM", {"Name": vm},
          pre=(vm_is(r.host, "Off"), state_in(r.host, {"FailedOverWaitingCompletion"})),
          post=(vm_is(r.host, "Running"),))
    warning = (f"{vm} has already failed over on {r.host} but was never started (an interrupted failover): only the "
               "start remains, from the recovery point that failover used")
    return Plan(Kind.UNPLANNED, vm, tuple(b.steps), (warning,), latest_point(r))


def plan_unplanned(facts: ReplicationFacts, point: str | None = None) -> Plan:
    """hyperv.md §1.4: on the replica only; the primary is left untouched. An interrupted one is finished (its
    start) unless another recovery point is asked for."""
    r, p, vm = facts.replica, facts.primary, facts.vm
    if point is None and interrupted_before_start(facts):
        return _plan_start_only(facts)
    reasons: list[str] = []
    _failover_gate(r, vm, reasons, test=False)
    if reasons:
        raise PlanRefused(Kind.UNPLANNED, vm, reasons)
    chosen = resolve_point(facts, point) if point is not None else None
    b = _Builder(vm)
    _start_failover(b, r.host, chosen, test=False,
                    pre=(vm_is(r.host, "Off"), mode_is(r.host, "Replica"), state_in(r.host, FAILOVER_STATES),
                         received_replication(r.host)),
                    post=(state_in(r.host, {"FailedOverWaitingCompletion"}),))
    b.add(r.host, "Start the failed-over VM on the replica", "Start-VM", {"Name": vm},
          pre=(vm_is(r.host, "Off"), state_in(r.host, {"FailedOverWaitingCompletion"})),
          post=(vm_is(r.host, "Running"),))
    return Plan(Kind.UNPLANNED, vm, tuple(b.steps), _unplanned_warnings(p, r, chosen),
                chosen or latest_point(r))


def _unplanned_warnings(p: SideFacts, r: SideFacts, chosen: RecoveryPoint | None) -> tuple[str, ...]:
    warnings: list[str] = []
    since = chosen.creation_time if chosen else r.last_replication
    if since is not None:
        warnings.append(f"changes made on the primary after {units.timestamp(since, seconds=True)} are lost")
    if p.reachable and p.vm_state == "Running":
        warnings.append(f"the primary VM on {p.host} is still running and is left untouched: isolate it so "
                        "two copies are not live on the network")
    if p.reachable and looks_broken(p) is None and p.health == "Normal":
        warnings.append(f"the primary on {p.host} looks healthy: a planned failover would lose nothing")
    return tuple(warnings)


def _test_vm_is(host: str, state: str) -> Check:
    return Check(host, f"the test VM exists and is {state}",
                 lambda s: s.test_vm_present and s.test_vm_state == state)


def plan_test(facts: ReplicationFacts, point: str | None = None) -> Plan:
    """hyperv.md §1.5: an isolated '<VM> - Test' VM on the replica; production and replication continue."""
    r, vm = facts.replica, facts.vm
    reasons: list[str] = []
    _failover_gate(r, vm, reasons, test=True)
    if reasons:
        raise PlanRefused(Kind.TEST, vm, reasons)
    chosen = resolve_point(facts, point, Kind.TEST) if point is not None else None
    b = _Builder(vm)
    _start_failover(b, r.host, chosen, test=True,
                    pre=(mode_is(r.host, "Replica"), state_in(r.host, FAILOVER_STATES - TEST_REFUSED_STATES),
                         received_replication(r.host), no_test_vm(r.host)),
                    post=(_test_vm_is(r.host, "Off"),))
    b.add(r.host, "Start the test VM (not connected to a network by default)", "Start-VM",
          {"Name": f"{vm} - Test"}, pre=(_test_vm_is(r.host, "Off"),), post=(_test_vm_is(r.host, "Running"),))
    return Plan(Kind.TEST, vm, tuple(b.steps), (), chosen or latest_point(r))


def _sides(facts: ReplicationFacts) -> tuple[SideFacts, SideFacts]:
    return facts.replica, facts.primary  # replica first: failovers are undone there before the primary


def plan_cancel(facts: ReplicationFacts) -> Plan:
    """hyperv.md §1.6: Stop-VMFailover where a failover is under way (replica first, then a prepared primary)."""
    vm, b, reasons = facts.vm, _Builder(facts.vm), []
    for side in _sides(facts):
        if not side.reachable:
            reasons.append(f"{side.host} does not answer, so its failover state is unknown")
        elif side.problem:
            reasons.append(side.problem)
        elif side.test_vm_present or side.state in ("FailedOverWaitingCompletion", "RecoveryInProgress"):
            b.add(side.host, "Cancel the failover (stops and removes a test VM, reverts a failover)",
                  "Stop-VMFailover", {"VMName": vm}, pre=(_cancellable(side.host),),
                  post=(no_test_vm(side.host),
                        _not_state(side.host, {"FailedOverWaitingCompletion", "RecoveryInProgress"})))
        elif side.state == "PreparedForFailover":
            b.add(side.host, "Cancel the prepared planned failover so the primary can start again",
                  "Stop-VMFailover", {"VMName": vm}, pre=(state_in(side.host, {"PreparedForFailover"}),),
                  post=(_not_state(side.host, {"PreparedForFailover"}),))
        elif side.state == "FailedOver":
            reasons.append(f"the failover on {side.host} was completed; it cannot be cancelled any more")
    if not b.steps:
        states = ", ".join(f"{s.host} {s.state}" for s in _sides(facts) if s.reachable)
        raise PlanRefused(Kind.CANCEL, vm, reasons + [f"no failover of {vm} to cancel ({states})"])
    return Plan(Kind.CANCEL, vm, tuple(b.steps), tuple(reasons))


def _cancellable(host: str) -> Check:
    states = {"FailedOverWaitingCompletion", "RecoveryInProgress"}
    return Check(host, "a test VM exists or a failover awaits completion",
                 lambda s: s.test_vm_present or s.state in states)


def _not_state(host: str, states: set[str]) -> Check:
    return Check(host, f"replication state is no longer {' or '.join(sorted(states))}",
                 lambda s: s.state not in states)


def _failed_over_side(facts: ReplicationFacts, states: frozenset[str] | set[str]) -> SideFacts | None:
    for side in _sides(facts):
        if side.reachable and side.mode == "Replica" and side.state in states:
            return side
    return None


def plan_complete(facts: ReplicationFacts) -> Plan:
    """hyperv.md §1.4 step 3: commit the chosen point; other recovery points are deleted; no undo."""
    side = _failed_over_side(facts, {"FailedOverWaitingCompletion"})
    if side is None:
        states = ", ".join(f"{s.host} {s.mode}/{s.state}" for s in _sides(facts) if s.reachable and not s.problem)
        problems = [s.problem for s in _sides(facts) if s.reachable and s.problem]
        raise PlanRefused(Kind.COMPLETE, facts.vm, problems + [f"no failover of {facts.vm} awaits completion "
                                                               f"({states})"])
    b = _Builder(facts.vm)
    b.add(side.host, "Complete the failover (commits the point, deletes the others)", "Complete-VMFailover",
          {"VMName": facts.vm}, pre=(state_in(side.host, {"FailedOverWaitingCompletion"}),),
          post=(state_in(side.host, {"FailedOver"}),))
    return Plan(Kind.COMPLETE, facts.vm, tuple(b.steps),
                ("all other recovery points are deleted and the failover can no longer be cancelled",))


def plan_reverse(facts: ReplicationFacts) -> Plan:
    """hyperv.md §1.7: after planned, -Reverse on the new primary; after unplanned, the three-step rebuild."""
    new = _failed_over_side(facts, FAILED_OVER_STATES)
    if new is None:
        raise PlanRefused(Kind.REVERSE, facts.vm, [f"{facts.vm} has not failed over: no replica in state "
                                                   "FailedOverWaitingCompletion or FailedOver"])
    old = facts.other(new.host)
    if new.extended_to:
        raise PlanRefused(Kind.REVERSE, facts.vm, [_extended_refusal(new, old.host, facts.vm)])
    if not old.reachable:
        raise PlanRefused(Kind.REVERSE, facts.vm, [f"the old primary host {old.host} is not back yet"])
    if old.problem:
        raise PlanRefused(Kind.REVERSE, facts.vm, [f"on the old primary host, {old.problem}"])
    b = _Builder(facts.vm)
    if old.state == "PreparedForFailover" and new.state == "FailedOverWaitingCompletion":
        _add_reverse_after_planned(b, new.host, old.host)
        return Plan(Kind.REVERSE, facts.vm, tuple(b.steps))
    if not old.fqdn:
        raise PlanRefused(Kind.REVERSE, facts.vm, [f"the FQDN of {old.host} is unknown (needed as ReplicaServerName)"])
    warnings = _add_rebuild_reverse(b, new, old)
    return Plan(Kind.REVERSE, facts.vm, tuple(b.steps), warnings)


def _add_rebuild_reverse(b: _Builder, new: SideFacts, old: SideFacts) -> tuple[str, ...]:
    warnings: tuple[str, ...] = ()
    if old.vm_state != "Off":
        # Inference: a replica target must not run; its data is replaced by the initial replication anyway.
        b.add(old.host, "Turn off the old primary VM (its data will be replaced)", "Stop-VM",
              {"Name": b.vm, "TurnOff": True}, pre=(mode_is(old.host, "Primary"),), post=(vm_is(old.host, "Off"),))
        warnings = (f"the VM on {old.host} is {old.vm_state}; it is turned off and its changes since the failover "
                    "are overwritten",)
    b.add(old.host, "Make the old primary a replica", "Set-VMReplication", {"VMName": b.vm, "AsReplica": True},
          pre=(vm_is(old.host, "Off"), mode_is(old.host, "Primary")),
          post=(mode_is(old.host, "Replica"), state_in(old.host, {"WaitingForInitialReplication"})))
    b.add(new.host, "Reverse replication towards the old primary", "Set-VMReplication",
          {"VMName": b.vm, "Reverse": True, "ReplicaServerName": old.fqdn},
          pre=(mode_is(new.host, "Replica"), state_in(new.host, FAILED_OVER_STATES), mode_is(old.host, "Replica")),
          post=(mode_is(new.host, "Primary"),))
    b.add(new.host, "Start the initial replication", "Start-VMInitialReplication", {"VMName": b.vm},
          pre=(mode_is(new.host, "Primary"),),
          post=(mode_is(new.host, "Primary"), state_in(new.host, {"InitialReplicationInProgress", "Replicating"})))
    return warnings


FOLLOW_UP_KINDS = frozenset({Kind.CANCEL, Kind.COMPLETE, Kind.REVERSE})


@dataclass(frozen=True)
class Recommendation:
    kind: Kind
    reason: str


def recommend(facts: ReplicationFacts, kind: Kind | str | None = None) -> Recommendation | None:
    """What the state calls for: finish a failover under way first; else unplanned when the primary host is
    lost or its VM is unhealthy; None when nothing calls for an operation (or ``kind`` is already it)."""
    pending = _follow_up(facts)
    if pending is not None:
        return None if kind is not None and Kind(kind) in FOLLOW_UP_KINDS else pending
    p = facts.primary
    if not p.reachable:
        why = (f"the primary host {p.host} does not answer; a planned failover needs it, an unplanned one "
               "runs on the replica alone")
    elif (broken := looks_broken(p)) is not None:
        why = f"{broken}; a planned failover would copy that state to the replica and break it too"
    else:
        return None
    blockers: list[str] = []
    _failover_gate(facts.replica, facts.vm, blockers, test=False)
    if blockers:
        why += ". But the replica cannot fail over now: " + "; ".join(blockers)
    return Recommendation(Kind.UNPLANNED, why[0].upper() + why[1:])


def _follow_up(facts: ReplicationFacts) -> Recommendation | None:
    """A failover already under way: the next step is to finish it (or undo it), never a new failover."""
    waiting = _failed_over_side(facts, {"FailedOverWaitingCompletion"})
    if waiting is not None and facts.other(waiting.host).state == "PreparedForFailover":
        return Recommendation(Kind.REVERSE, f"A planned failover of {facts.vm} to {waiting.host} stopped before "
                                            "replication was reversed: reverse it to finish, or cancel it to go back")
    if waiting is not None:
        return Recommendation(Kind.COMPLETE, f"A failover of {facts.vm} to {waiting.host} awaits completion: "
                                             "complete it to keep it, or cancel it to go back")
    done = _failed_over_side(facts, {"FailedOver"})
    if done is not None:
        return Recommendation(Kind.REVERSE, f"{facts.vm} has failed over to {done.host} and nothing replicates it "
                                            "now: reverse replication once the old primary is back")
    return None


def build_plan(kind: Kind | str, facts: ReplicationFacts, point: str | None = None) -> Plan:
    """The step plan of ``kind`` for these facts; PlanRefused (with reasons) when a precondition fails."""
    kind = Kind(kind)
    if point is not None and kind not in (Kind.UNPLANNED, Kind.TEST):
        raise PlanRefused(kind, facts.vm, ["a recovery point can be chosen only for unplanned or test failover"])
    if kind is Kind.UNPLANNED:
        return plan_unplanned(facts, point)
    if kind is Kind.TEST:
        return plan_test(facts, point)
    return {Kind.PLANNED: plan_planned, Kind.CANCEL: plan_cancel, Kind.COMPLETE: plan_complete,
            Kind.REVERSE: plan_reverse}[kind](facts)
