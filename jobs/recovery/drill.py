"""A failover drill: a test failover of each VM, its test VM started and awaited, then always cleaned up.

A plan's groups are drilled as a failover runs them (``jobs.recovery.execute``): in order, the next group after
every heartbeat of the group before (when the group waits for heartbeats) and its delay; within a group, at most
``per_host`` VMs in their failover steps at once on one replica host (HVBOT_RECOVERY_PER_HOST_PARALLEL, the
failover's setting); a failure stops the drill after its group when the group says ``on_failure: stop``. The test
VMs stay up until the whole plan was brought up (later groups boot next to earlier ones, as in a real recovery),
then every test VM is removed (``jobs.recovery.drill_groups``).

Per VM (hyperv.md §1.5): the replica's facts and the same checked test plan as `/hyperv failover VM test`
(``jobs.failover.plan.plan_test``); ``Start-VMFailover -AsTest`` on the replica, ``Start-VM '<VM> - Test'``,
``Get-VM`` until its heartbeat is OK, then ``Stop-VMFailover -VMName <VM>`` (stops and deletes the test VM).
The VM's state is written to Redis before each mutating step (``jobs.recovery.drill_store``), so when the worker
dies a housekeeping chore knows which test VMs may be left and removes them (``cleanup_vm``).

Times come from the replica host where it can say them: the recovery point's age is the test VM's
``CreationTime`` minus the point's, and the time to heartbeat is the test VM's ``Uptime`` when its heartbeat is
first seen OK (at most one poll late). The overall recovery time is the worker's own measure, drill start to the
last heartbeat.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobs.failover.facts import ReplicationFacts, SideFacts
from jobs.failover.gather import read_side
from jobs.failover.plan import PlanRefused, plan_test
from jobs.failover.run import step_pipeline
from jobs.hyperv.commands import single
from jobs.hyperv.errors import HyperVError
from jobs.hyperv.fleet import Fleet
from jobs.hyperv.records import VmRecord, type_name
from jobs.recovery import drill_store as states
from jobs.recovery.drill_store import DrillStore
from jobs.recovery.model import Member
from jobs.recovery.settings import RecoverySettings

OK_HEARTBEATS = frozenset({"OkApplicationsHealthy", "OkApplicationsUnknown"})  # VMHeartbeatStatus, hyperv.md §3


@dataclass(frozen=True)
class DrillOptions:
    heartbeat_timeout_s: float = 600.0  # per VM, from Start-VM
    poll_s: float = 2.0
    parallel: int = 20  # test VMs awaited at once (each mostly waits for its guest to boot)
    cleanup_wait_s: float = 30.0  # how long Stop-VMFailover's result may take to show
    per_host: int = 4  # VMs of a group in their failover steps at once on one replica host, as in a failover
    lock_ttl_ms: int = 30_000  # the drill's VM locks, renewed while it runs


class DrillSettings(BaseSettings):
    """Drill knobs (env prefix HVBOT_DRILL_), read by the worker that runs the drill."""

    model_config = SettingsConfigDict(env_prefix="HVBOT_DRILL_", extra="ignore", hide_input_in_errors=True)
    heartbeat_timeout_s: float = Field(default=600.0, gt=0, description="per VM, from its start to an OK heartbeat")
    poll_s: float = Field(default=2.0, gt=0, description="how often a test VM's heartbeat is read")
    parallel: int = Field(default=20, ge=1, le=200, description="test VMs awaited at once")

    def options(self) -> DrillOptions:
        recovery = RecoverySettings()  # the failover's per-host limit and lock lease: a drill runs like one
        return DrillOptions(self.heartbeat_timeout_s, self.poll_s, self.parallel,
                            per_host=recovery.per_host_parallel, lock_ttl_ms=recovery.lock_ttl_ms)


@dataclass
class Drill:
    fleet: Fleet
    store: DrillStore
    drill_id: str
    options: DrillOptions = field(default_factory=DrillOptions)
    on_vm: Callable[[dict[str, Any]], None] = lambda row: None  # each VM's row once its result is known
    started: float = field(default_factory=time.monotonic)
    stop: threading.Event = field(default_factory=threading.Event)  # set when the drill is being torn down

    @property
    def redis(self) -> redis.Redis:
        return self.store.redis


def new_row(m: Member) -> dict[str, Any]:
    return {"vm": m.vm, "primary_host": m.primary_host, "replica_host": m.replica_host, "result": "failed",
            "recovery_point": None, "point_created": None, "point_age_s": None, "test_vm_created": None,
            "time_to_heartbeat_s": None, "recovery_s": None, "heartbeat": None, "cleaned": True,
            "problems": [], "notes": []}


def replica_facts(fleet: Fleet, m: Member) -> ReplicationFacts:
    """The replica side's facts (a test failover runs there alone); the primary is not read."""
    out = fleet.fan_out(lambda call: read_side(call, m.vm), hosts=[m.replica_host])
    if m.replica_host in out.errors:
        raise out.errors[m.replica_host]
    return ReplicationFacts(m.vm, SideFacts(host=m.primary_host or "?", reachable=False), out.results[m.replica_host])


def test_vm_present(fleet: Fleet, m: Member) -> bool:
    return replica_facts(fleet, m).replica.test_vm_present


def cleanup_vm(fleet: Fleet, m: Member, wait_s: float = 30.0, poll_s: float = 0.5) -> str | None:
    """Stop-VMFailover when the VM's test VM exists; None when none is left, else why it could not be removed."""
    try:
        if not test_vm_present(fleet, m):
            return None
        fleet.run(m.replica_host, single("Stop-VMFailover", VMName=[m.vm]))
        deadline = time.monotonic() + wait_s
        while test_vm_present(fleet, m):
            if time.monotonic() >= deadline:
                return f"Stop-VMFailover ran on {m.replica_host}, but the test VM of {m.vm} is still there"
            time.sleep(poll_s)  # Hyper-V deletes the test VM asynchronously; bounded by the deadline
        return None
    except HyperVError as err:
        return f"cleanup of the test VM of {m.vm} on {m.replica_host} failed: {err.message}"


def _test_vm(objects: Sequence[Any], vm: str, host: str) -> VmRecord | None:
    name = f"{vm} - Test".lower()
    return next((r for o in objects if type_name(o) == "VirtualMachine"
                 for r in [VmRecord.parse(host, o)] if r.name.lower() == name), None)


def _await_heartbeat(d: Drill, m: Member) -> VmRecord | None:
    """The test VM as first seen with an OK heartbeat; None when the time limit passed first."""
    deadline = time.monotonic() + d.options.heartbeat_timeout_s
    while True:
        rec = _test_vm(d.fleet.run(m.replica_host, single("Get-VM", Name=[f"{m.vm} - Test"])), m.vm, m.replica_host)
        if rec is not None and rec.heartbeat in OK_HEARTBEATS:
            return rec
        if time.monotonic() >= deadline or d.stop.wait(d.options.poll_s):  # polled, bounded by the deadline
            return None


def _seconds(later: Any, earlier: Any) -> float | None:
    return round((later - earlier).total_seconds(), 1) if later is not None and earlier is not None else None


def start_test(d: Drill, m: Member, row: dict[str, Any]) -> None:
    """Check, ``Start-VMFailover -AsTest``, ``Start-VM``: the steps a failover bounds per replica host. Sets
    ``row["mutated"]`` from the first mutating step on: from then a test VM of ours may exist."""
    d.store.set_vm(d.drill_id, m.vm, states.CHECKING, replica=m.replica_host)
    facts = replica_facts(d.fleet, m)
    plan = plan_test(facts)
    point = plan.recovery_point
    if point is not None:
        row["recovery_point"], row["point_created"] = point.name, point.creation_time.isoformat()
    d.store.set_vm(d.drill_id, m.vm, states.FAILING_OVER, replica=m.replica_host)
    row["mutated"] = True
    failover, start = plan.steps[0], plan.steps[1]
    test = _test_vm(d.fleet.run(failover.host, step_pipeline(failover)), m.vm, m.replica_host)
    if test is not None and test.creation_time is not None:
        row["test_vm_created"] = test.creation_time.isoformat()
        row["point_age_s"] = _seconds(test.creation_time, point.creation_time if point else None)
    d.fleet.run(start.host, step_pipeline(start))
    d.store.set_vm(d.drill_id, m.vm, states.STARTED, replica=m.replica_host)


def await_test(d: Drill, m: Member, row: dict[str, Any]) -> None:
    """Wait for the started test VM's heartbeat and record when the guest answered."""
    seen = _await_heartbeat(d, m)
    if seen is None:
        row["problems"].append(f"no OK heartbeat from the test VM within {d.options.heartbeat_timeout_s:.0f} s")
        return
    row["heartbeat"], row["time_to_heartbeat_s"] = seen.heartbeat, seen.uptime_s
    row["recovery_s"] = round(time.monotonic() - d.started, 1)
    d.store.set_vm(d.drill_id, m.vm, states.HEARTBEAT, replica=m.replica_host)
    row["result"] = "passed"


def refuse(row: dict[str, Any], exc: PlanRefused | HyperVError) -> None:
    if isinstance(exc, PlanRefused):
        row["result"] = "refused"
        row["problems"].extend(exc.reasons)
    else:
        row["result"] = "failed"
        row["problems"].append(exc.message)


def tear_down(d: Drill, m: Member, row: dict[str, Any]) -> None:
    """Only a test VM this drill made is removed: one that existed before is someone else's test failover."""
    if row.pop("mutated", False):
        _clean(d, m, row)
    else:
        d.store.set_vm(d.drill_id, m.vm, states.REFUSED if row["result"] == "refused" else states.CLEANED,
                       replica=m.replica_host)


def _clean(d: Drill, m: Member, row: dict[str, Any]) -> None:
    problem = cleanup_vm(d.fleet, m, d.options.cleanup_wait_s)
    if problem is None:
        d.store.set_vm(d.drill_id, m.vm, states.CLEANED, replica=m.replica_host)
        return
    row["cleaned"], row["result"] = False, "cleanup_failed"
    row["problems"].append(problem)
    d.store.set_vm(d.drill_id, m.vm, states.CLEANUP_FAILED, replica=m.replica_host, problem=problem)
