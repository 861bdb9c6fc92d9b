"""Drilling a plan group by group, the way ``jobs.recovery.execute`` fails it over.

Groups run in order. Within a group, every VM's checks and test-failover steps run in parallel, at most
``per_host`` at once on one replica host; its heartbeat is then awaited off that limit (a booting guest costs its
host nothing of ours). When the group waits for heartbeats, the next group starts after the last one and the
group's delay; ``on_failure: stop`` leaves the later groups undrilled once a VM of the group failed. Every test
VM stays up until the plan was brought up, then all are removed, whatever happened (a bug included).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from jobs.failover.plan import PlanRefused
from jobs.hyperv.errors import HyperVError
from jobs.recovery import drill_store as states
from jobs.recovery.drill import Drill, await_test, new_row, refuse, start_test, tear_down
from jobs.recovery.drill_checks import check_networks
from jobs.recovery.locks import RunLocks
from jobs.recovery.model import Member, OnFailure, PlanGroup, ResolvedGroup


@dataclass
class Lane:
    """One VM of the drill: its report row and whether its lock is ours."""

    member: Member
    row: dict[str, Any]
    locked: bool = False
    beat: Future[None] | None = field(default=None, repr=False)


def one_group(members: Sequence[Member], name: str = "VMs") -> tuple[ResolvedGroup, ...]:
    """VMs drilled together with a failover's default group settings (a single VM, or a list in tests)."""
    return (ResolvedGroup(name, PlanGroup(name, tuple(m.vm for m in members)), tuple(members)),)


def run(d: Drill, groups: Sequence[ResolvedGroup]) -> dict[str, Any]:
    """Check every VM's test network, then drill the groups in order. Returns rows (plan order) and totals."""
    members = [m for g in groups for m in g.vms]
    network = check_networks(d.fleet, members)
    if network.refused:
        rows = []
        for m in members:
            row = new_row(m) | {"result": "refused", "problems": network.refusals.get(m.vm, []),
                                "notes": network.notes.get(m.vm, [])}
            if not row["problems"]:
                row["problems"] = ["not drilled: another VM of this drill would land on a production network"]
            rows.append(row)
        return {"ok": False, "refused": True, "vms": rows}
    rows = bring_up_and_clean(d, groups)
    for row in rows:
        row["notes"] = network.notes.get(row["vm"], []) + row["notes"]
    return {"ok": all(r["result"] == "passed" for r in rows), "refused": False, "vms": rows}


def drill_vm(d: Drill, m: Member) -> dict[str, Any]:
    """One VM's whole drill (steps, heartbeat, cleanup), its test network already checked."""
    return bring_up_and_clean(d, one_group([m]))[0]


def bring_up_and_clean(d: Drill, groups: Sequence[ResolvedGroup]) -> list[dict[str, Any]]:
    """Drill the groups in order, then remove every test VM made; the VMs' rows in plan order."""
    lanes = [[Lane(m, new_row(m)) for m in g.vms] for g in groups]
    with (RunLocks(d.redis, f"drill:{d.drill_id}", d.options.lock_ttl_ms) as locks,
          ThreadPoolExecutor(max_workers=max(1, d.options.parallel), thread_name_prefix="hvbot-drill") as waits):
        try:
            _groups_in_order(d, groups, lanes, locks, waits)
        finally:
            d.stop.set()  # heartbeat waiters still polling (after a bug) end at their next poll
            _tear_down_all(d, [lane for group in lanes for lane in group], locks)
    return [lane.row for group in lanes for lane in group]


def _groups_in_order(d: Drill, groups: Sequence[ResolvedGroup], lanes: list[list[Lane]], locks: RunLocks,
                     waits: ThreadPoolExecutor) -> None:
    stopped_after: str | None = None
    for index, (group, group_lanes) in enumerate(zip(groups, lanes, strict=True)):
        if stopped_after is not None:
            for lane in group_lanes:
                _skip(d, lane, f"not drilled: group {stopped_after} had a failure and stops the plan")
            continue
        _start_group(d, group_lanes, locks, waits)
        if group.settings.wait_heartbeat:
            wait([lane.beat for lane in group_lanes if lane.beat is not None])
        if group.settings.on_failure is OnFailure.STOP and any(_failed(lane) for lane in group_lanes):
            stopped_after = group.name
        elif group.settings.delay_s > 0 and index < len(groups) - 1:
            d.stop.wait(group.settings.delay_s)  # the plan's own pause between groups
    wait([lane.beat for group_lanes in lanes for lane in group_lanes if lane.beat is not None])


def _failed(lane: Lane) -> bool:
    # Known failures only: a heartbeat still awaited (the group does not wait for them) is not one yet.
    done = lane.beat is None or lane.beat.done()
    return done and lane.row["result"] != "passed"


def _start_group(d: Drill, group_lanes: list[Lane], locks: RunLocks, waits: ThreadPoolExecutor) -> None:
    hosts = sorted({lane.member.replica_host for lane in group_lanes})
    limits = {h: threading.BoundedSemaphore(d.options.per_host) for h in hosts}
    width = max(1, min(len(group_lanes), d.options.per_host * len(hosts)))
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="hvbot-drill-steps") as steps:
        started = list(steps.map(lambda lane: _steps(d, lane, locks, limits[lane.member.replica_host]),
                                 group_lanes))
    for lane, ok in zip(group_lanes, started, strict=True):
        if ok:
            lane.beat = waits.submit(_beat, d, lane)
        else:
            d.on_vm(lane.row)


def _steps(d: Drill, lane: Lane, locks: RunLocks, limit: threading.BoundedSemaphore) -> bool:
    """The VM's lock and test-failover steps within its replica host's limit; True when its test VM started."""
    m, row = lane.member, lane.row
    with limit:
        holder = locks.acquire(m.vm)
        if holder is not None:
            row["result"] = "refused"
            row["problems"].append(f"another operation on {m.vm} is running ({holder}); not drilled")
            d.store.set_vm(d.drill_id, m.vm, states.REFUSED, replica=m.replica_host)
            return False
        lane.locked = True
        try:
            start_test(d, m, row)
        except (PlanRefused, HyperVError) as exc:
            refuse(row, exc)
            return False
    return True


def _beat(d: Drill, lane: Lane) -> None:
    try:
        await_test(d, lane.member, lane.row)
    except HyperVError as err:
        lane.row["problems"].append(err.message)
    d.on_vm(lane.row)


def _skip(d: Drill, lane: Lane, why: str) -> None:
    lane.row["result"] = "refused"
    lane.row["problems"].append(why)
    d.store.set_vm(d.drill_id, lane.member.vm, states.REFUSED, replica=lane.member.replica_host)
    d.on_vm(lane.row)


def _tear_down_all(d: Drill, lanes: list[Lane], locks: RunLocks) -> None:
    """Remove every test VM the drill made, in parallel, and free each VM's lock once its VM is clean."""
    ours = [lane for lane in lanes if lane.locked]
    if not ours:
        return
    with ThreadPoolExecutor(max_workers=max(1, min(len(ours), d.options.parallel)),
                            thread_name_prefix="hvbot-drill-clean") as pool:
        list(pool.map(lambda lane: _clean_one(d, lane, locks), ours))


def _clean_one(d: Drill, lane: Lane, locks: RunLocks) -> None:
    try:
        tear_down(d, lane.member, lane.row)
    finally:
        locks.release(lane.member.vm)
