"""Executing an approved recovery plan: groups in order, VMs of a group in parallel (bounded per replica host).

Every VM goes through the same checked steps as a single failover (``jobs.failover.run.execute``: facts read
before its steps, each step's preconditions checked, the command sent once, its result awaited), under its VM lock.
So that the hosts and not the bot set the pace, the VMs' reads of one host are merged into one batched read at a
time (``jobs.recovery.batched_facts``), a step's preconditions are checked on the facts that confirmed the step
before it, and commands go out on up to ``per_host`` sessions per host (``jobs.hyperv.lanes``). When the
group says so, each failed-over VM's heartbeat is awaited from the moment its steps end (bounded by the group's
time limit); the next group starts after the group's last heartbeat and its delay. A VM that fails never stops
its group; ``on_failure: stop`` stops the plan after the group. Every change is written to the run's progress
record (``jobs.recovery.progress``), which the live card and the dead-run sweep read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from jobs.failover.gather import FailoverLookupError, Pair, locate
from jobs.failover.plan import Kind
from jobs.failover.run import Run, execute
from jobs.hyperv.errors import HyperVError
from jobs.hyperv.fleet import Fleet
from jobs.hyperv.lanes import HostLanes
from jobs.recovery.batched_facts import BatchedFacts
from jobs.recovery.heartbeats import HeartbeatWatch
from jobs.recovery.locks import RunLocks
from jobs.recovery.model import Member, OnFailure, ResolvedGroup, ResolvedPlan
from jobs.recovery.progress import RunProgress, VmState

START_KINDS = (Kind.PLANNED, Kind.UNPLANNED, Kind.TEST)  # kinds that boot a VM, so a heartbeat can be awaited
# What may follow a run of each kind, for all its VMs (each opens its own preview and approval)
FOLLOW_UPS: dict[Kind, tuple[Kind, ...]] = {
    Kind.PLANNED: (Kind.COMPLETE, Kind.CANCEL, Kind.REVERSE),
    Kind.UNPLANNED: (Kind.COMPLETE, Kind.CANCEL, Kind.REVERSE),
    Kind.TEST: (Kind.CANCEL,),
    Kind.COMPLETE: (Kind.REVERSE,),
}


@dataclass
class Recovery:
    """One approved run: the plan, where progress goes, and how VMs are locked."""

    fleet: Fleet
    plan: ResolvedPlan
    kind: Kind
    progress: RunProgress
    locks: RunLocks
    per_host: int = 4
    heartbeat_poll_s: float = 1.0
    stop: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], float] = time.monotonic
    lanes: HostLanes | None = None  # set while run_plan runs: up to per_host sessions per host
    reads: BatchedFacts | None = None  # set while run_plan runs: the VMs' facts, merged per host


@dataclass
class GroupResult:
    name: str
    seconds: float
    ok: list[str]
    failed: list[str]
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "seconds": self.seconds, "ok": len(self.ok), "failed": len(self.failed),
                "skipped": len(self.skipped), "failed_vms": self.failed}


def run_plan(rec: Recovery) -> dict[str, Any]:
    """Run every group in order; returns the summary (per-group and overall recovery time, next actions)."""
    with HostLanes(rec.fleet, rec.per_host) as lanes, BatchedFacts(rec.fleet, lanes) as reads:
        rec.lanes, rec.reads = lanes, reads
        try:
            return _run_groups(rec)
        finally:
            rec.lanes, rec.reads = None, None


def _run_groups(rec: Recovery) -> dict[str, Any]:
    started = rec.clock()
    results: list[GroupResult] = []
    stopped_after: str | None = None
    for index, group in enumerate(rec.plan.groups):
        if stopped_after is not None:
            results.append(_skip(rec, group, f"not started: the plan stopped after group {stopped_after}"))
            continue
        result = _run_group(rec, group)
        results.append(result)
        if result.failed and group.settings.on_failure is OnFailure.STOP:
            stopped_after = group.name
        elif group.settings.delay_s > 0 and index < len(rec.plan.groups) - 1 and rec.kind in START_KINDS:
            # The plan's pause lets booted services settle; complete, cancel and reverse boot nothing
            rec.stop.wait(group.settings.delay_s)
    ok = sum(len(r.ok) for r in results)
    failed = sum(len(r.failed) for r in results)
    skipped = sum(len(r.skipped) for r in results)
    return {"ok": failed == 0 and skipped == 0, "kind": str(rec.kind), "seconds": round(rec.clock() - started, 1),
            "groups": [r.to_dict() for r in results], "done": ok, "failed": failed, "skipped": skipped,
            "stopped_after": stopped_after, "next_actions": [str(k) for k in FOLLOW_UPS.get(rec.kind, ())]}


def _skip(rec: Recovery, group: ResolvedGroup, why: str) -> GroupResult:
    for m in group.vms:
        rec.progress.update(m, state=VmState.SKIPPED, error=why)
    return GroupResult(group.name, 0.0, [], [], [m.vm for m in group.vms])


def _run_group(rec: Recovery, group: ResolvedGroup) -> GroupResult:
    started = rec.clock()
    deadline = started + group.settings.timeout_s
    watch = (HeartbeatWatch(rec.fleet, test=rec.kind is Kind.TEST, deadline=deadline, poll_s=rec.heartbeat_poll_s,
                            seen=lambda m: _done(rec, m), stop=rec.stop)
             if group.settings.wait_heartbeat and rec.kind in START_KINDS else None)
    hosts = sorted({m.replica_host for m in group.vms})
    limits = {h: threading.BoundedSemaphore(rec.per_host) for h in hosts}
    width = max(1, min(len(group.vms), rec.per_host * len(hosts)))
    with ThreadPoolExecutor(max_workers=width + 1, thread_name_prefix="hvbot-recovery") as pool:
        beats = pool.submit(watch.run) if watch is not None else None
        errors = list(pool.map(lambda m: _run_member(rec, m, limits[m.replica_host], deadline, watch), group.vms))
        if watch is not None:
            watch.close()
        silent = beats.result() if beats is not None else {}
    failed = {m: e for m, e in zip(group.vms, errors, strict=True) if e}
    for m, why in silent.items():
        failed[m] = f"no healthy heartbeat within the group's {group.settings.timeout_s:g} s ({why})"
        rec.progress.finish(m, failed[m])
    for m in group.vms:
        rec.locks.release(m.vm)
    return GroupResult(group.name, round(rec.clock() - started, 1), [m.vm for m in group.vms if m not in failed],
                       [m.vm for m in group.vms if m in failed])


def _done(rec: Recovery, member: Member) -> None:
    rec.progress.finish(member)
    rec.locks.release(member.vm)


def _run_member(rec: Recovery, member: Member, limit: threading.BoundedSemaphore, deadline: float,
                watch: HeartbeatWatch | None) -> str:
    """The VM's checked failover steps; returns "" on success, else the error (already recorded). A VM whose
    group waits for heartbeats is done when its heartbeat is seen, otherwise when its steps are."""
    with limit:
        if rec.clock() >= deadline:
            return _fail(rec, member, "not started: the group's time limit passed first", start=True)
        holder = rec.locks.acquire(member.vm)
        if holder is not None:
            return _fail(rec, member, f"another operation on {member.vm} is running ({holder}); nothing was done",
                         start=True)
        rec.progress.start(member)
        try:
            outcome = execute(_vm_run(rec, member))
        except (FailoverLookupError, HyperVError) as exc:
            return _fail(rec, member, str(exc))
        if not outcome["ok"]:
            step = f"step {outcome['failed_step']}: " if outcome.get("failed_step") else ""
            return _fail(rec, member, step + outcome["error"])
        if watch is not None:
            rec.progress.update(member, state=VmState.HEARTBEAT, step="waiting for heartbeat", booted=time.time())
            watch.add(member)
        else:
            _done(rec, member)
        return ""


def _vm_run(rec: Recovery, member: Member) -> Run:
    # A primary whose host is down is unknown to the resolver; the replica names its primary server.
    pair = (Pair(member.primary_host, member.replica_host) if member.primary_host
            else locate(rec.fleet, member.vm, member.replica_host))

    def report(step: dict[str, Any]) -> None:
        mark = "" if step["ok"] else " (failed)"
        rec.progress.update(member, step=f"{step['number']}. {step['title']}{mark}")

    reads, lanes = rec.reads, rec.lanes
    assert reads is not None and lanes is not None, "a member runs inside run_plan"
    return Run(rec.fleet, rec.kind, member.vm, pair, None, None, report, keepalive=lambda: rec.locks.held(member.vm),
               read=lambda: reads.facts(member.vm, pair), send=lambda host, pipe: lanes.run(host, pipe),
               reread_before_step=False)


def _fail(rec: Recovery, member: Member, error: str, start: bool = False) -> str:
    if start:
        rec.progress.start(member)
    rec.progress.finish(member, error)
    rec.locks.release(member.vm)
    return error
