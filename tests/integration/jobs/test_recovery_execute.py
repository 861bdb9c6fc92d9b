"""Recovery plans executed against the lab over real PSRP and real Redis (jobs.recovery.execute).

Site A loses power; the plan fails its VMs over to site B group by group. The lab's command log shows the order:
group 2's first failover command comes after group 1's heartbeat read that found every group-1 VM healthy.
"""

from __future__ import annotations

import threading
from typing import Any

import redis

from jobs.failover.plan import Kind
from jobs.hyperv.fleet import Fleet
from jobs.locks import VmLock
from jobs.recovery.execute import Recovery, run_plan
from jobs.recovery.locks import RunLocks
from jobs.recovery.model import Member, OnFailure, PlanGroup, ResolvedGroup, ResolvedPlan, Scope, ScopeKind
from jobs.recovery.progress import RunProgress
from lab.fleet import Lab

REPLICA = {"hv-a1": "hv-b1", "hv-a2": "hv-b2"}




def group(name: str, vms: list[tuple[str, str]], **settings: Any) -> ResolvedGroup:
    members = tuple(Member(vm, primary, REPLICA[primary]) for vm, primary in vms)
    return ResolvedGroup(name, PlanGroup(name, tuple(v for v, _ in vms), **settings), members)


def site_plan(*groups: ResolvedGroup) -> ResolvedPlan:
    return ResolvedPlan(Scope(ScopeKind.SITE, "site-a"), "", tuple(groups))


def run(fleet: Fleet, conn: redis.Redis, plan: ResolvedPlan, run_id: str = "ap1") -> tuple[dict[str, Any], RunProgress]:
    progress = RunProgress(conn, run_id)
    progress.create(plan, {"kind": "unplanned"})
    with RunLocks(conn, run_id, 30_000) as locks:
        summary = run_plan(Recovery(fleet, plan, Kind.UNPLANNED, progress, locks, per_host=2, heartbeat_poll_s=0.2))
    return summary, progress


def vm_state(lab: Lab, host: str, vm: str) -> str:
    return str(lab.fleet.vm(host, vm).state)


def log_index(lab: Lab, cmdlet: str, names: set[str]) -> list[int]:
    """Positions in the command log of ``cmdlet`` calls naming one of ``names`` (VMName or Name)."""
    out = []
    for i, entry in enumerate(lab.command_log()):
        if entry.cmdlet != cmdlet:
            continue
        named = {str(v) for k, value in entry.parameters if k in ("VMName", "Name")
                 for v in (value if isinstance(value, list) else [value])}
        if named & names:
            out.append(i)
    return out


def heartbeat_reads(lab: Lab, names: set[str]) -> list[int]:
    """Get-VM calls naming VMs exactly (no wildcard): the run's heartbeat polls, not its fact reads."""
    out = []
    for i, entry in enumerate(lab.command_log()):
        if entry.cmdlet != "Get-VM":
            continue
        named = {str(v) for k, value in entry.parameters if k == "Name"
                 for v in (value if isinstance(value, list) else [value])}
        if named and named <= names and not any("*" in n for n in named):
            out.append(i)
    return out


def test_site_failover_runs_groups_in_order_after_heartbeats(site_down: tuple[Lab, Fleet],
                                                             redis_conn: redis.Redis) -> None:
    lab, fleet = site_down
    first = [("fw01", "hv-a1"), ("dc01", "hv-a1"), ("dc02", "hv-a2")]
    second = [("web01", "hv-a1"), ("sql01", "hv-a1"), ("web02", "hv-a2"), ("sql02", "hv-a2")]
    lab.control("hv-b1", "fail_next", {"host": "hv-b1", "cmdlet": "Start-VMFailover", "vm": "sql01"})
    summary, progress = run(fleet, redis_conn, site_plan(group("core", first, timeout_s=60),
                                                         group("apps", second, timeout_s=60)))
    for vm, primary in first + second:
        expected = "Off" if vm == "sql01" else "Running"
        assert vm_state(lab, REPLICA[primary], vm) == expected, vm
    assert summary["done"] == 6 and summary["failed"] == 1 and summary["skipped"] == 0
    assert [g["name"] for g in summary["groups"]] == ["core", "apps"]
    assert summary["groups"][1]["failed_vms"] == ["sql01"]  # the failure did not stop its group
    snap = {v["vm"]: v for v in progress.snapshot()["vms"]}
    assert snap["sql01"]["state"] == "failed" and "sql01" in snap["sql01"]["error"]
    assert all(snap[v]["state"] == "done" and snap[v]["seconds"] is not None for v, _ in first)
    core = {v for v, _ in first}
    group1_boots = log_index(lab, "Start-VM", core)
    group1_heartbeats = heartbeat_reads(lab, core)
    group2_failovers = log_index(lab, "Start-VMFailover", {v for v, _ in second})
    assert group1_boots and group1_heartbeats and group2_failovers
    assert max(group1_boots) < max(group1_heartbeats) < min(group2_failovers)
    for vm, _ in first + second:
        assert VmLock(redis_conn, vm).holder() is None  # every lock released


def test_on_failure_stop_ends_the_plan_after_its_group(site_down: tuple[Lab, Fleet], redis_conn: redis.Redis) -> None:
    lab, fleet = site_down
    lab.control("hv-b1", "fail_next", {"host": "hv-b1", "cmdlet": "Start-VMFailover", "vm": "dc01"})
    plan = site_plan(group("core", [("fw01", "hv-a1"), ("dc01", "hv-a1")], on_failure=OnFailure.STOP),
                     group("apps", [("web01", "hv-a1"), ("web02", "hv-a2")]))
    summary, progress = run(fleet, redis_conn, plan)
    assert vm_state(lab, "hv-b1", "fw01") == "Running"  # its group finished despite dc01
    assert vm_state(lab, "hv-b1", "web01") == "Off" and vm_state(lab, "hv-b2", "web02") == "Off"
    assert not log_index(lab, "Start-VMFailover", {"web01", "web02"})
    assert summary["stopped_after"] == "core" and summary["skipped"] == 2
    states = {v["vm"]: v["state"] for v in progress.snapshot()["vms"]}
    assert states == {"fw01": "done", "dc01": "failed", "web01": "skipped", "web02": "skipped"}
    left = progress.remaining()
    assert [m.vm for m in left.vms()] == ["dc01", "web01", "web02"]
    assert [g.name for g in left.groups] == ["core", "apps"]


def test_a_vm_whose_heartbeat_never_comes_fails_at_the_group_limit(site_down: tuple[Lab, Fleet],
                                                                   redis_conn: redis.Redis) -> None:
    lab, fleet = site_down
    # The lab's "broken" control also starts the VM (which would refuse the failover): mark the replica VM's guest
    # broken while it is off instead, so it boots after the failover but never reports a healthy heartbeat.
    lab.fleet.vm("hv-b1", "dc01").broken = True
    plan = site_plan(group("core", [("fw01", "hv-a1"), ("dc01", "hv-a1")], timeout_s=3),
                     group("apps", [("web01", "hv-a1")]))
    _summary, progress = run(fleet, redis_conn, plan)
    states = {v["vm"]: v for v in progress.snapshot()["vms"]}
    assert states["fw01"]["state"] == "done"
    assert states["dc01"]["state"] == "failed" and "LostCommunication" in states["dc01"]["error"]
    assert vm_state(lab, "hv-b1", "dc01") == "Running"  # it did fail over; only the guest stays silent
    assert states["web01"]["state"] == "done"  # on_failure continue: the plan went on


def test_a_locked_vm_is_refused_and_left_alone(site_down: tuple[Lab, Fleet], redis_conn: redis.Redis) -> None:
    lab, fleet = site_down
    other = VmLock(redis_conn, "dc01")
    assert other.acquire("someone-else")
    _summary, progress = run(fleet, redis_conn, site_plan(group("core", [("fw01", "hv-a1"), ("dc01", "hv-a1")])))
    states = {v["vm"]: v for v in progress.snapshot()["vms"]}
    assert states["dc01"]["state"] == "failed" and "someone-else" in states["dc01"]["error"]
    assert not log_index(lab, "Start-VMFailover", {"dc01"})
    assert states["fw01"]["state"] == "done"
    assert other.holder() == "someone-else"


class RecordedWaits(threading.Event):
    """The run's stop event, recording how long the run asked to pause, and never pausing."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.asked.append(timeout)
        return super().wait(0)


def test_a_group_delay_pauses_a_failover_but_not_the_cancel_that_follows(site_down: tuple[Lab, Fleet],
                                                                        redis_conn: redis.Redis) -> None:
    lab, fleet = site_down
    plan = site_plan(group("core", [("dc01", "hv-a1")], delay_s=3600, wait_heartbeat=False),
                     group("apps", [("web01", "hv-a1")]))
    for kind, run_id, asked in ((Kind.UNPLANNED, "ap1", True), (Kind.CANCEL, "ap2", False)):
        waits = RecordedWaits()
        progress = RunProgress(redis_conn, run_id)
        progress.create(plan, {"kind": str(kind)})
        with RunLocks(redis_conn, run_id, 30_000) as locks:
            summary = run_plan(Recovery(fleet, plan, kind, progress, locks, per_host=2, stop=waits))
        assert summary["done"] == 2 and summary["failed"] == 0, summary
        assert (3600 in waits.asked) is asked, (kind, waits.asked)
    for vm in ("dc01", "web01"):
        rep = lab.fleet.vm("hv-b1", vm).replication
        assert rep is not None and (rep.state, vm_state(lab, "hv-b1", vm)) == ("Replicating", "Off")
