"""Failover operations against the fleet: preview a plan, and execute an approved one step by step.

Execution re-reads the facts before every step and checks its preconditions on them, runs the step's
registry command once (never retried: these steps mutate), then waits (bounded) until its expectation holds.
The first failure stops the run; the outcome carries the PowerShell error, the VM's state now and the safe
next actions (the follow-up plans that the current state allows).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobs.failover.facts import ReplicationFacts, SideFacts
from jobs.failover.gather import Pair, gather, locate
from jobs.failover.plan import Kind, Plan, PlanRefused, build_plan, describe, recommend
from jobs.failover.steps import Step
from jobs.hyperv.commands import Pipeline, command, pipeline
from jobs.hyperv.errors import HyperVError
from jobs.hyperv.fleet import Fleet
from jobs.report import Report

EXPECT_WAIT_S = 30.0  # how long a step's result may take to show (Hyper-V applies some changes asynchronously)
POLL_S = 0.25
FOLLOW_UPS = (Kind.CANCEL, Kind.COMPLETE, Kind.REVERSE)


def step_pipeline(step: Step) -> Pipeline:
    """The registry command of a step (``-Confirm:$false`` and ``-ErrorAction Stop`` are added when sent)."""
    params = {k: ([v] if k in ("Name", "VMName") and not isinstance(v, list) else v)
              for k, v in step.parameters.items()}
    if step.piped_from is None:
        return pipeline(command(step.cmdlet, **params))
    src = step.piped_from
    source = command(src.cmdlet, **{k: ([v] if k == "VMName" else v) for k, v in src.parameters.items()})
    return pipeline(source, command(step.cmdlet, piped=True, **params))


def side_summary(side: SideFacts) -> dict[str, Any]:
    last = side.last_replication.isoformat(timespec="seconds") if side.last_replication else None
    return {"host": side.host, "reachable": side.reachable, "mode": side.mode, "state": side.state,
            "health": side.health, "vm_state": side.vm_state, "heartbeat": side.heartbeat,
            "last_replication": last, "test_vm": side.test_vm_state if side.test_vm_present else None,
            "extended_to": side.extended_to, "problem": side.problem, "shutdown_service": side.shutdown_service}


def state_summary(facts: ReplicationFacts) -> list[dict[str, Any]]:
    return [side_summary(facts.primary), side_summary(facts.replica)]


def preview(fleet: Fleet, kind: Kind | str, vm: str, point: str | None = None, host: str | None = None) -> dict[str, Any]:
    """What the requester sees before asking: steps, meaning, state of both sides, recommendation or refusal."""
    pair = locate(fleet, vm, host)
    facts = gather(fleet, vm, pair)
    rec = recommend(facts, kind)
    data: dict[str, Any] = {
        "kind": str(Kind(kind)), "vm": vm, "point": point, "primary": pair.primary, "replica": pair.replica,
        "description": describe(kind), "sides": state_summary(facts),
        "recommendation": {"kind": str(rec.kind), "reason": rec.reason} if rec else None,
    }
    try:
        plan = build_plan(kind, facts, point)
    except PlanRefused as refused:
        return data | {"refused": refused.reasons, "steps": [], "signature": []}
    return data | {"refused": [], "steps": [s.to_dict() for s in plan.steps], "warnings": list(plan.warnings),
                   "signature": plan.signature(),
                   "recovery_point": plan.recovery_point.name if plan.recovery_point else None}


def recovery_points(fleet: Fleet, vm: str, host: str | None = None) -> dict[str, Any]:
    pair = locate(fleet, vm, host)
    facts = gather(fleet, vm, pair)
    points = [{"name": p.name, "type": p.snapshot_type, "created": p.creation_time.isoformat(timespec="seconds")}
              for p in facts.replica.recovery_points]
    return {"vm": vm, "replica": pair.replica, "points": points, "sides": state_summary(facts)}


@dataclass
class Run:
    """One execution: what was approved, where progress goes, and a liveness hook (lock renewal).

    ``signature`` None: the approval bound a whole recovery plan (jobs.recovery), not this VM's steps, so the
    steps are built from the facts read now and each is still checked before and after it runs.

    A recovery run feeds many VMs at once: ``read`` (fresh facts of both sides, read after the call) and ``send``
    (a step's command on a host) replace the fleet's own ``gather`` and ``run``, and ``reread_before_step`` False
    checks a step's preconditions on the facts that confirmed the previous step (or the first read) instead of
    reading them again right away. Every check still runs, on facts read after the last command."""

    fleet: Fleet
    kind: Kind
    vm: str
    pair: Pair
    point: str | None
    signature: list[list[Any]] | None
    report_step: Callable[[dict[str, Any]], None]
    keepalive: Callable[[], bool] = lambda: True
    expect_wait_s: float = EXPECT_WAIT_S
    read: Callable[[], ReplicationFacts] | None = None
    send: Callable[[str, Pipeline], Any] | None = None
    reread_before_step: bool = True

    def facts(self) -> ReplicationFacts:
        return self.read() if self.read is not None else gather(self.fleet, self.vm, self.pair)

    def send_step(self, step: Step) -> None:
        pipe = step_pipeline(step)
        if self.send is not None:
            self.send(step.host, pipe)
        else:
            self.fleet.run(step.host, pipe)


def execute(run: Run) -> dict[str, Any]:
    """Run the approved plan; returns the outcome dict (ok, steps, failed step, error, state, next actions)."""
    facts = run.facts()
    try:
        plan = build_plan(run.kind, facts, run.point)
    except PlanRefused as refused:
        return _outcome(run, facts, [], None, "refused now: " + "; ".join(refused.reasons))
    if run.signature is not None and plan.signature() != run.signature:
        return _outcome(run, facts, [], None, "the plan changed since it was approved (the VM's state moved); "
                                              "request it again to see the new steps")
    done: list[dict[str, Any]] = []
    for step in plan.steps:
        if not run.keepalive():
            return _outcome(run, facts, done, step, "lost the VM lock (worker too slow); stopped before this step")
        result, facts = _run_step(run, step, facts)
        done.append(result)
        run.report_step(result)
        if not result["ok"]:
            return _outcome(run, facts, done, step, result["error"])
    return _outcome(run, facts, done, None, "", plan)


def _run_step(run: Run, step: Step, last: ReplicationFacts) -> tuple[dict[str, Any], ReplicationFacts]:
    started = time.monotonic()
    base = {"number": step.number, "title": step.title, "host": step.host, "command": step.render()}
    facts = run.facts() if run.reread_before_step else last
    unmet = step.unmet_preconditions(facts)
    if unmet:
        return base | {"ok": False, "seconds": _since(started), "error": "precondition failed: " + "; ".join(unmet)}, facts
    try:
        run.send_step(step)
    except HyperVError as err:
        return base | {"ok": False, "seconds": _since(started), "error": err.message}, run.facts()
    facts, unmet = _await_expectation(run, step)
    if unmet:
        return base | {"ok": False, "seconds": _since(started),
                       "error": "ran, but the result did not show: " + "; ".join(unmet)}, facts
    return base | {"ok": True, "seconds": _since(started), "error": ""}, facts


def _await_expectation(run: Run, step: Step) -> tuple[ReplicationFacts, list[str]]:
    deadline = time.monotonic() + run.expect_wait_s
    while True:
        facts = run.facts()
        unmet = step.unmet_expectations(facts)
        if not unmet or time.monotonic() >= deadline:
            return facts, unmet
        time.sleep(POLL_S)  # production polling of the host, bounded by the deadline


def _since(started: float) -> float:
    return round(time.monotonic() - started, 2)


def next_actions(facts: ReplicationFacts) -> list[str]:
    """Follow-up operations the current state allows (each still needs its own preview and approval)."""
    actions = []
    for kind in FOLLOW_UPS:
        try:
            build_plan(kind, facts)
        except PlanRefused:
            continue
        actions.append(str(kind))
    return actions


def _outcome(run: Run, facts: ReplicationFacts, done: list[dict[str, Any]], failed: Step | None, error: str,
             plan: Plan | None = None) -> dict[str, Any]:
    ok = not error
    return {"ok": ok, "kind": str(run.kind), "vm": run.vm, "steps": done,
            "failed_step": failed.number if failed is not None else None, "error": error,
            "sides": state_summary(facts), "next_actions": next_actions(facts),
            "warnings": list(plan.warnings) if plan else []}


def state_now(fleet: Fleet, vm: str, pair: Pair) -> dict[str, Any]:
    """The VM's real state on both sides and the safe next actions (after a worker died mid-run)."""
    facts = gather(fleet, vm, pair)
    return {"sides": state_summary(facts), "next_actions": next_actions(facts)}


POINT_COLUMNS = ["host", "vm", "name", "type", "created"]


def points_report(fleet: Fleet, vm: str, host: str | None = None) -> Report:
    """`/hyperv points VM`: the replica's recovery points as a Report (oldest first), for the lookup path."""
    data = recovery_points(fleet, vm, host)
    rows = [{"host": data["replica"], "vm": vm, "name": p["name"], "type": p["type"], "created": p["created"]}
            for p in data["points"]]
    return Report("points", POINT_COLUMNS, rows, [], [data["replica"]])
