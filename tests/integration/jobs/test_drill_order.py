"""A drill of a plan runs like its failover: groups in order (the next group's first test failover after the last
heartbeat of the group before), at most HVBOT_RECOVERY_PER_HOST_PARALLEL VMs in their failover steps at once on
one replica host, test VMs of earlier groups still up while later groups boot, and every test VM removed at the end.

The lab's clock is frozen, so guests answer only when the test moves it; how many VMs were in their steps at once is
read from the lab's command log. No sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from jobs.hyperv.fleet import Fleet
from jobs.hyperv.hosts import load_inventory
from jobs.hyperv.settings import JobSettings
from jobs.recovery import drill, drill_groups
from jobs.recovery.drill_store import DrillStore
from jobs.recovery.model import Member, OnFailure, PlanGroup, ResolvedGroup
from jobs.recovery.settings import RecoverySettings
from lab.fleet import Lab
from tests.support.drill_fleet import boot_of, drill_fleet, lab_test_vms
from tests.support.fixtures_redis import wait_until

COUNT, FIRST = 8, 4


@pytest.fixture
def drill_lab(make_lab: Callable[..., Lab], tmp_path: Path, request: pytest.FixtureRequest
              ) -> Iterator[tuple[Lab, Fleet]]:
    lab = make_lab(drill_fleet(COUNT, boots=getattr(request, "param", (30, 60))))
    inv = lab.write_inventory(tmp_path / "inventory.yml")
    with Fleet(load_inventory(inv), JobSettings(deadline_s=30)) as fleet:
        yield lab, fleet


def _groups(**first: Any) -> tuple[ResolvedGroup, ...]:
    names = [f"dr{i:02d}" for i in range(1, COUNT + 1)]
    split = [names[:FIRST], names[FIRST:]]
    return tuple(ResolvedGroup(label, PlanGroup(label, tuple(vms), **(first if label == "first" else {})),
                               tuple(Member(vm, "hv-a1", "hv-b1") for vm in vms))
                 for label, vms in zip(("first", "rest"), split, strict=True))


def _named(entry: Any) -> set[str]:
    return {str(v) for k, value in entry.parameters if k in ("VMName", "Name")
            for v in (value if isinstance(value, list) else [value])}


def _indexes(lab: Lab, cmdlet: str, names: set[str]) -> list[int]:
    return [i for i, e in enumerate(lab.command_log("hv-b1")) if e.cmdlet == cmdlet and _named(e) & names]


def most_vms_in_steps(lab: Lab, vms: set[str]) -> int:
    """The most VMs whose steps were open at once in hv-b1's log: from a VM's first fact read (``Get-VM -Name
    'VM*'``) to its test VM's ``Start-VM``. The host serves one call at a time, so the log's order is enough."""
    log = lab.command_log("hv-b1")
    spans = []
    for vm in vms:
        first = min(i for i, e in enumerate(log) if e.cmdlet == "Get-VM" and f"{vm}*" in _named(e))
        last = max(i for i, e in enumerate(log) if e.cmdlet == "Start-VM" and f"{vm} - Test" in _named(e))
        spans.append((first, last))
    return max(sum(1 for a, b in spans if a <= i <= b) for i in range(len(log)))


def answered(d: drill.Drill) -> set[str]:
    return {vm for vm, s in d.store.vm_states(d.drill_id).items() if s["state"] == "heartbeat"}


def _running_test_vms(lab: Lab) -> set[str]:
    return {vm.name.removesuffix(" - Test") for vm in lab_test_vms(lab.fleet) if vm.state == "Running"}


def test_a_drill_honours_group_order_and_the_per_host_limit(drill_lab: tuple[Lab, Fleet], redis_conn: redis.Redis,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    lab, fleet = drill_lab
    monkeypatch.setenv("HVBOT_RECOVERY_PER_HOST_PARALLEL", "2")  # the failover's setting, read by the drill too
    monkeypatch.setenv("HVBOT_DRILL_POLL_S", "0.1")
    options = drill.DrillSettings().options()
    assert options.per_host == 2 == RecoverySettings().per_host_parallel
    frozen = datetime.fromisoformat(lab.control(None, "clock", {"freeze": True})["now"])
    with lab.fleet.lock:
        points = {vm.name: max(c.creation_time for c in vm.checkpoints) for vm in lab.fleet.host("hv-b1").vms}
    d = drill.Drill(fleet, DrillStore(redis_conn), "t-order", options)
    out: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: out.update(drill_groups.run(d, _groups())), daemon=True)
    runner.start()
    first, rest = {f"dr{i:02d}" for i in range(1, FIRST + 1)}, {f"dr{i:02d}" for i in range(FIRST + 1, COUNT + 1)}
    wait_until(lambda: _running_test_vms(lab) == first, 30, "group 1's test VMs started")
    assert not _indexes(lab, "Start-VMFailover", rest)  # group 2 waits for group 1's heartbeats
    lab.control(None, "clock", {"advance_s": 30})  # half of group 1 answers: still not enough
    wait_until(lambda: answered(d) == {v for v in first if boot_of(int(v[2:])) == 30}, 30, "group 1's 30 s guests")
    assert not _indexes(lab, "Start-VMFailover", rest)
    lab.control(None, "clock", {"advance_s": 30})
    wait_until(lambda: _running_test_vms(lab) == first | rest, 30, "group 2's test VMs started beside group 1's")
    lab.control(None, "clock", {"advance_s": 30})
    wait_until(lambda: answered(d) == first | {v for v in rest if boot_of(int(v[2:])) == 30}, 30, "30 s guests")
    lab.control(None, "clock", {"advance_s": 30})
    runner.join(60)
    assert not runner.is_alive() and out["ok"], out
    assert most_vms_in_steps(lab, first) <= 2 and most_vms_in_steps(lab, rest) <= 2  # the per-host limit
    beats_1 = [i for i, e in enumerate(lab.command_log("hv-b1")) if e.cmdlet == "Get-VM"
               and _named(e) & {f"{v} - Test" for v in first}]
    assert max(beats_1) < min(_indexes(lab, "Start-VMFailover", rest))
    assert max(_indexes(lab, "Start-VM", {f"{v} - Test" for v in rest})) < min(_indexes(lab, "Stop-VMFailover", first | rest))
    rows = {r["vm"]: r for r in out["vms"]}
    assert list(rows) == sorted(first) + sorted(rest)  # the report keeps plan order
    for vm, row in rows.items():
        started = frozen if vm in first else frozen + timedelta(seconds=60)  # group 2 began at +60 s
        assert row["time_to_heartbeat_s"] == boot_of(int(vm[2:])), row  # the lab's boot time
        assert row["point_age_s"] == round((started - points[vm]).total_seconds(), 1), row
    assert lab_test_vms(lab.fleet) == []
    assert len(_indexes(lab, "Stop-VMFailover", first | rest)) == COUNT


@pytest.mark.parametrize("drill_lab", [(0, 0)], indirect=True)
def test_on_failure_stop_leaves_later_groups_undrilled(drill_lab: tuple[Lab, Fleet], redis_conn: redis.Redis) -> None:
    lab, fleet = drill_lab
    lab.control("hv-b1", "fail_next", {"host": "hv-b1", "cmdlet": "Start-VMFailover", "vm": "dr02"})
    d = drill.Drill(fleet, DrillStore(redis_conn), "t-stop", drill.DrillOptions(poll_s=0.1, per_host=4))
    out = drill_groups.run(d, _groups(on_failure=OnFailure.STOP))
    rows = {r["vm"]: r for r in out["vms"]}
    assert rows["dr02"]["result"] == "failed" and rows["dr01"]["result"] == "passed"
    for i in range(FIRST + 1, COUNT + 1):
        assert rows[f"dr{i:02d}"]["result"] == "refused" and "stops the plan" in rows[f"dr{i:02d}"]["problems"][0]
    assert not _indexes(lab, "Start-VMFailover", {f"dr{i:02d}" for i in range(FIRST + 1, COUNT + 1)})
    assert lab_test_vms(lab.fleet) == []
