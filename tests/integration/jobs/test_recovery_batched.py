"""How a recovery run reaches the hosts (jobs.hyperv.lanes, jobs.recovery.batched_facts), against the lab.

Several sessions per host, never more than the limit; VMs' reads of one host merged into one batched read that
starts after every request it answers; and a run whose VMs still read their facts after every command.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
import redis

from jobs.failover.facts import SideFacts
from jobs.failover.gather import Pair, gather
from jobs.failover.plan import Kind
from jobs.hyperv.commands import single
from jobs.hyperv.errors import HostTimeout
from jobs.hyperv.fleet import Fleet, HostCall
from jobs.hyperv.lanes import HostLanes
from jobs.recovery.batched_facts import BatchedFacts, HostBatcher
from jobs.recovery.execute import Recovery, run_plan
from jobs.recovery.gather import read_replicated, run_reads
from jobs.recovery.locks import RunLocks
from jobs.recovery.model import Member, PlanGroup, ResolvedGroup, ResolvedPlan, Scope, ScopeKind
from jobs.recovery.progress import RunProgress
from lab.fleet import Lab

WAIT_S = 30.0  # generous: the machine may be loaded




def test_lanes_lend_up_to_per_host_sessions_and_close_only_their_own(site_down: tuple[Lab, Fleet]) -> None:
    _lab, fleet = site_down
    with HostLanes(fleet, per_host=3) as lanes:
        with lanes.borrow("hv-b1") as s1, lanes.borrow("hv-b1") as s2, lanes.borrow("hv-b1") as s3:
            assert len({id(s1), id(s2), id(s3)}) == 3
            assert fleet.session("hv-b1") not in (s1, s2, s3)  # the fleet's own stays free for other calls
            assert lanes.sessions("hv-b1") == 3
            with pytest.raises(HostTimeout, match="waiting for a free session"), lanes.borrow("hv-b1", deadline_at=0):
                pass
            outs: list[int] = []
            threads = [threading.Thread(target=lambda s=s: outs.append(len(s.run(single("Get-VM")))))
                       for s in (s1, s2, s3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(WAIT_S)
            assert len(outs) == 3 and len(set(outs)) == 1 and outs[0] > 0  # three shells, one answer
        assert lanes.sessions("hv-b1") == 3  # returned, not discarded
        assert lanes.run("hv-b1", single("Get-VM"))
        fleet.run("hv-b1", single("Get-VM"))
    assert all(not s.is_open for s in (s1, s2, s3))
    assert fleet.session("hv-b1").is_open  # the fleet keeps its own


def test_a_request_joins_only_a_read_not_yet_started() -> None:
    entered, release = threading.Event(), threading.Event()
    batches: list[list[str]] = []

    def read(names: Sequence[str]) -> dict[str, SideFacts]:
        batches.append(list(names))
        entered.set()
        release.wait(WAIT_S)
        return {n.lower(): SideFacts(host="h", mode="Replica") for n in names}

    batcher = HostBatcher("h", read, WAIT_S)
    try:
        first = batcher.request("a")
        assert entered.wait(WAIT_S)  # the read of "a" is in flight
        later = [batcher.request(vm) for vm in ("b", "c", "B")]
        assert len({id(b) for b in later}) == 1 and later[0] is not first
        release.set()
        assert batcher.side(first, "a").mode == "Replica"
        assert batcher.side(later[0], "c").host == "h"
        assert batches == [["a"], ["b", "c"]]  # b and c in one read, after they asked; "B" is b
        assert batcher.reads == 2
    finally:
        release.set()
        batcher.close()


def test_merged_reads_match_gather_and_a_dark_host_is_unreachable(site_down: tuple[Lab, Fleet]) -> None:
    _lab, fleet = site_down
    vms = [("fw01", Pair("hv-a1", "hv-b1")), ("dc01", Pair("hv-a1", "hv-b1")), ("dc02", Pair("hv-a2", "hv-b2"))]
    with HostLanes(fleet, 2) as lanes, BatchedFacts(fleet, lanes) as reads:
        got = {}
        threads = [threading.Thread(target=lambda vm=vm, pair=pair: got.update({vm: reads.facts(vm, pair)}))
                   for vm, pair in vms]
        for t in threads:
            t.start()
        for t in threads:
            t.join(WAIT_S)
        assert reads.reads() <= 2 * len(vms)
    for vm, pair in vms:
        single_vm = gather(fleet, vm, pair)
        assert not got[vm].primary.reachable and not single_vm.primary.reachable
        merged, alone = got[vm].replica, single_vm.replica
        assert (merged.mode, merged.state, merged.vm_state, merged.recovery_points, merged.last_replication) == \
               (alone.mode, alone.state, alone.vm_state, alone.recovery_points, alone.last_replication)


def test_every_vm_is_read_after_each_of_its_commands(site_down: tuple[Lab, Fleet], redis_conn: redis.Redis) -> None:
    lab, fleet = site_down
    names = ["fw01", "dc01", "web01", "sql01"]
    members = tuple(Member(vm, "hv-a1", "hv-b1") for vm in names)
    plan = ResolvedPlan(Scope(ScopeKind.SITE, "site-a"), "",
                        (ResolvedGroup("all", PlanGroup("all", tuple(names), timeout_s=60), members),))
    progress = RunProgress(redis_conn, "batched")
    progress.create(plan, {"kind": "unplanned"})
    with RunLocks(redis_conn, "batched", 30_000) as locks:
        summary = run_plan(Recovery(fleet, plan, Kind.UNPLANNED, progress, locks, per_host=4, heartbeat_poll_s=0.2))
    assert summary["done"] == len(names) and summary["failed"] == 0
    log = [e for e in lab.command_log("hv-b1")]
    fact_reads = [i for i, e in enumerate(log) if e.cmdlet == "Get-VMReplicationServer"]
    assert len(fact_reads) <= 3 * len(names)  # a single failover reads 5 times per VM; merged, fewer
    for vm in names:
        def named(cmdlet: str, vm: str = vm) -> list[int]:
            return [i for i, e in enumerate(log) if e.cmdlet == cmdlet and any(
                vm in (v if isinstance(v, list) else [v]) for k, v in e.parameters if k in ("Name", "VMName"))]

        reads = [i for i, e in enumerate(log) if e.cmdlet == "Get-VM" and any(
            f"{vm}*" in (v if isinstance(v, list) else [v]) for k, v in e.parameters if k == "Name")]
        failover, start = named("Start-VMFailover"), named("Start-VM")
        assert len(failover) == 1 and len(start) == 1
        assert reads[0] < failover[0]  # checked before its first command
        assert any(failover[0] < r < start[0] for r in reads)  # its result read before the next command
        assert any(r > start[0] for r in reads)  # and the last one's result


def test_one_invocation_falls_back_when_a_vm_is_not_replicated_there(site_down: tuple[Lab, Fleet]) -> None:
    lab, fleet = site_down
    before = len(lab.command_log("hv-b1"))
    sides = read_replicated(HostCall(fleet.session("hv-b1"), time.monotonic() + 10), ["fw01", "dc01"])
    assert len(lab.command_log("hv-b1")) - before == len(run_reads(["fw01", "dc01"]))  # one invocation
    assert sides["fw01"].mode == "Replica" and sides["dc01"].recovery_points
    sides = read_replicated(HostCall(fleet.session("hv-b1"), time.monotonic() + 10), ["fw01", "nosuch"])
    assert sides["fw01"].mode == "Replica" and sides["fw01"].problem is None
    assert sides["nosuch"].problem == "there is no VM named nosuch on hv-b1"
