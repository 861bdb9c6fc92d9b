"""Failover drills against the lab over real PSRP and real Redis: the engine, the production-switch refusal,
scheduled drills under two monitors, and the untested-plan notice (through the fake Slack Web API)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from rq import Queue
from rq.serializers import JSONSerializer
from slack_sdk import WebClient

from bot.adapters.fake_slack import FakeSlack
from bot.delivery.drills import SlackDrillReporter
from bot.settings import Settings
from jobs import ports
from jobs.hyperv.commands import single
from jobs.hyperv.fleet import Fleet
from jobs.hyperv.hosts import load_inventory
from jobs.hyperv.settings import JobSettings
from jobs.monitor.lease import MonitorLease
from jobs.monitor.loop import LeaseLost, Monitor
from jobs.monitor.state import AlertEngine
from jobs.recovery import drill, drill_groups
from jobs.recovery.drill_groups import one_group
from jobs.recovery.drill_chores import start_due_drills, untested_plans
from jobs.recovery.drill_store import DrillStore, RunRecord, StoredSchedule
from jobs.recovery.drill_tasks import sweep_dead_drills
from jobs.recovery.drill_targets import plan_members
from jobs.recovery.model import DrillSchedule, Member, PlanGroup, RecoveryPlan
from lab.fleet import Lab
from tests.support.drill_fleet import drill_fleet, lab_test_vms
from tests.support.fixtures_redis import TEST_QUEUE

WARN, ONCALL = "#hv-ops-test", "#hv-oncall-test"


@pytest.fixture
def drill_lab(make_lab: Callable[..., Lab], tmp_path: Path) -> Iterator[tuple[Lab, Fleet]]:
    lab = make_lab(drill_fleet(4, boots=(0, 0)))
    inv = lab.write_inventory(tmp_path / "inventory.yml")
    with Fleet(load_inventory(inv), JobSettings(deadline_s=10)) as fleet:
        yield lab, fleet


@pytest.fixture
def slack_drills(fake_slack: FakeSlack, redis_conn: redis.Redis) -> Iterator[FakeSlack]:
    settings = Settings(slack_api_url=fake_slack.api_url, alert_warning_channel=WARN, alert_critical_channel=ONCALL,
                        channel_post_interval_seconds=0)
    client = WebClient(token="xoxb-test", base_url=fake_slack.api_url)
    previous = ports.current_drills()
    ports.install_drills(SlackDrillReporter(settings, redis_conn, client))
    yield fake_slack
    ports.install_drills(previous)


def test_a_plan_resolves_to_its_replicated_vms_in_group_order(drill_lab: tuple[Lab, Fleet]) -> None:
    _, fleet = drill_lab
    plan = RecoveryPlan("p", (PlanGroup("late", ("dr03", "dr04")), PlanGroup("all", ("dr*",))))
    members = plan_members(fleet, plan, [plan])
    assert [m.vm for m in members] == ["dr03", "dr04", "dr01", "dr02"]
    assert {(m.primary_host, m.replica_host) for m in members} == {("hv-a1", "hv-b1")}


def test_a_drill_passes_and_leaves_no_test_vm(drill_lab: tuple[Lab, Fleet], redis_conn: redis.Redis) -> None:
    lab, fleet = drill_lab
    members = [Member(f"dr0{i}", "hv-a1", "hv-b1") for i in range(1, 5)]
    out = drill_groups.run(drill.Drill(fleet, DrillStore(redis_conn), "t-pass", drill.DrillOptions(poll_s=0.1)), one_group(members))
    assert out["ok"], out
    assert [r["result"] for r in out["vms"]] == ["passed"] * 4
    assert all(r["recovery_point"] and r["point_age_s"] is not None for r in out["vms"])
    assert lab_test_vms(lab.fleet) == []
    assert len([e for e in lab.command_log("hv-b1") if e.cmdlet == "Stop-VMFailover"]) == 4
    states = DrillStore(redis_conn).vm_states("t-pass")
    assert {s["state"] for s in states.values()} == {"cleaned"}


def test_a_production_test_switch_refuses_the_drill_before_anything_runs(
        make_lab: Callable[..., Lab], tmp_path: Path, redis_conn: redis.Redis) -> None:
    lab = make_lab(drill_fleet(3, boots=(0, 0), production_switch_vm="dr02"))
    with Fleet(load_inventory(lab.write_inventory(tmp_path / "inv.yml")), JobSettings(deadline_s=10)) as fleet:
        members = [Member(f"dr0{i}", "hv-a1", "hv-b1") for i in range(1, 4)]
        out = drill_groups.run(drill.Drill(fleet, DrillStore(redis_conn), "t-prod"), one_group(members))
    assert out["refused"] and not out["ok"]
    bad = next(r for r in out["vms"] if r["vm"] == "dr02")
    assert "test switch 'vSwitch-LAN', which is its own production switch" in bad["problems"][0]
    assert "-TestReplicaSwitchName" in bad["problems"][0]
    assert not [e for e in lab.command_log() if e.cmdlet in ("Start-VMFailover", "Start-VM", "Stop-VMFailover")]


def test_a_vm_without_heartbeat_fails_and_is_still_cleaned_up(drill_lab: tuple[Lab, Fleet],
                                                              redis_conn: redis.Redis) -> None:
    lab, fleet = drill_lab
    lab.control(None, "clock", {"freeze": True})
    with lab.fleet.lock:  # this guest never finishes booting on the frozen clock
        lab.fleet.vm("hv-b1", "dr01").boot_seconds = 600
    members = [Member("dr01", "hv-a1", "hv-b1"), Member("dr02", "hv-a1", "hv-b1")]
    options = drill.DrillOptions(heartbeat_timeout_s=1.0, poll_s=0.1)
    out = drill_groups.run(drill.Drill(fleet, DrillStore(redis_conn), "t-nohb", options), one_group(members))
    rows = {r["vm"]: r for r in out["vms"]}
    assert rows["dr01"]["result"] == "failed" and "no OK heartbeat" in rows["dr01"]["problems"][0]
    assert rows["dr02"]["result"] == "passed" and rows["dr02"]["time_to_heartbeat_s"] == 0
    assert lab_test_vms(lab.fleet) == []


def _monitor(conn: redis.Redis) -> Monitor:
    return Monitor(conn, Queue(TEST_QUEUE, connection=conn, serializer=JSONSerializer), hosts=[],
                   engine=AlertEngine(conn), deliver=None, interval_s=60)


def _drill_jobs(conn: redis.Redis) -> list[str]:
    queue = Queue(TEST_QUEUE, connection=conn, serializer=JSONSerializer)
    return [j.id for j in queue.get_jobs() if j.func_name.endswith("run_drill")]


def test_a_scheduled_drill_runs_once_with_two_monitors(redis_conn: redis.Redis, monkeypatch: pytest.MonkeyPatch,
                                                      slack_drills: FakeSlack) -> None:
    monkeypatch.setenv("HVBOT_QUEUE", TEST_QUEUE)
    monkeypatch.delenv("HVBOT_RECOVERY_PLANS_DIR", raising=False)
    store = DrillStore(redis_conn)
    since = datetime.now(UTC) - timedelta(days=2)
    store.set_schedule(StoredSchedule("dr-plan", DrillSchedule(every_s=86400, without_approval=True),
                                      since.timestamp(), "U0APPROVER", {"channel": "C1", "user": "U0APPROVER"}))
    monitors = [(_monitor(redis_conn), MonitorLease(redis_conn, ttl_s=30)) for _ in range(2)]
    lost: list[str] = []
    barrier = threading.Barrier(2)

    def round_of(monitor: Monitor, lease: MonitorLease) -> None:
        barrier.wait()
        try:
            monitor._round(lease, tick_s=1)
        except LeaseLost:
            lost.append(lease.holder)

    threads = [threading.Thread(target=round_of, args=pair) for pair in monitors]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(lost) == 1  # exactly one monitor holds the lease and runs the chores
    assert len(_drill_jobs(redis_conn)) == 1
    # A worker's start-up housekeeping (or a monitor that took the lease over) in the same period: nothing more.
    assert start_due_drills(redis_conn, datetime.now(UTC)) == 0
    assert len(_drill_jobs(redis_conn)) == 1
    entry = [json.dumps({k.decode(): v.decode() for k, v in f.items()})
             for _, f in redis_conn.xrevrange("hvbot:audit", count=20)]
    assert any("drill dr-plan (scheduled)" in e and "no second approval" in e for e in entry)
    # The next one is due a period after this start.
    assert start_due_drills(redis_conn, datetime.now(UTC) + timedelta(days=1, minutes=1)) == 1
    assert len(_drill_jobs(redis_conn)) == 2


def test_a_scheduled_drill_that_needs_an_operator_is_announced_not_run(
        redis_conn: redis.Redis, monkeypatch: pytest.MonkeyPatch, slack_drills: FakeSlack) -> None:
    monkeypatch.setenv("HVBOT_QUEUE", TEST_QUEUE)
    store = DrillStore(redis_conn)
    store.set_schedule(StoredSchedule("ops-plan", DrillSchedule(every_s=86400), (datetime.now(UTC) -
                                      timedelta(hours=1)).timestamp(), "plan file", {}))
    assert start_due_drills(redis_conn, datetime.now(UTC)) == 1
    assert _drill_jobs(redis_conn) == []
    posted = slack_drills.calls_to("chat.postMessage")
    assert [c.args["channel"] for c in posted] == [WARN]
    assert "/hyperv drill ops-plan" in posted[0].args["text"]


def test_the_untested_notice_fires_once_for_a_plan_past_its_period(redis_conn: redis.Redis,
                                                                   slack_drills: FakeSlack) -> None:
    store, now = DrillStore(redis_conn), datetime.now(UTC)
    month = DrillSchedule(every_s=30 * 86400)
    store.set_schedule(StoredSchedule("stale", month, (now - timedelta(days=40)).timestamp(), "U1", {}))
    store.set_schedule(StoredSchedule("fresh", month, (now - timedelta(days=40)).timestamp(), "U1", {}))
    store.set_schedule(StoredSchedule("new", month, (now - timedelta(days=3)).timestamp(), "U1", {}))
    store.record_success("plan", "fresh", (now - timedelta(days=10)).timestamp(), {})
    assert untested_plans(redis_conn, now) == 1
    assert untested_plans(redis_conn, now + timedelta(hours=1)) == 0  # once per period
    notes = [c.args for c in slack_drills.calls_to("chat.postMessage")]
    assert len(notes) == 1 and notes[0]["channel"] == WARN
    assert "Plan stale is untested: never drilled successfully" in notes[0]["text"]


def test_a_dead_drill_whose_cleanup_cannot_run_alerts_on_call_then_cleans_up_when_it_can(
        drill_lab: tuple[Lab, Fleet], redis_conn: redis.Redis, slack_drills: FakeSlack) -> None:
    lab, fleet = drill_lab
    fleet.run("hv-b1", single("Start-VMFailover", VMName=["dr01"], AsTest=True))  # what the dead drill left
    store = DrillStore(redis_conn)
    member = Member("dr01", "hv-a1", "hv-b1")
    store.register(RunRecord("dead1", "drdead1", "dr01", "", [asdict(member), asdict(Member("dr02", "hv-a1", "hv-b1"))],
                             {"channel": "C1", "user": "U1", "command": "drill dr01"}, "manual", time.time() - 60))
    store.set_vm("dead1", "dr01", "failing_over", replica="hv-b1")
    store.set_vm("dead1", "dr02", "checking", replica="hv-b1")  # never reached a mutating step: left alone
    lab.control("hv-b1", "down", {})
    now = datetime.now(UTC)
    assert sweep_dead_drills(redis_conn, now, fleet=fleet) == 0
    assert sweep_dead_drills(redis_conn, now, fleet=fleet) == 0  # retried, but alerted only once
    pages = [c.args for c in slack_drills.calls_to("chat.postMessage") if c.args["channel"] == ONCALL]
    assert len(pages) == 1 and "test VMs could not be removed" in pages[0]["text"]
    assert "dr01" in pages[0]["text"] and "Stop-VMFailover" in pages[0]["text"]
    assert [r.drill_id for r in store.runs()] == ["dead1"]
    lab.control("hv-b1", "up", {})
    assert sweep_dead_drills(redis_conn, now, fleet=fleet) == 1
    assert lab_test_vms(lab.fleet) == [] and store.runs() == []
    stops = [e for e in lab.command_log("hv-b1") if e.cmdlet == "Stop-VMFailover"]
    assert len(stops) == 1  # dr02 had no test VM to remove
    report = [c.args for c in slack_drills.calls_to("chat.postMessage") if c.args["channel"] == "C1"]
    assert len(report) == 1 and "ABANDONED (the worker stopped; test VMs cleaned up)" in report[0]["text"]


def test_someone_elses_test_vm_is_left_alone(drill_lab: tuple[Lab, Fleet], redis_conn: redis.Redis) -> None:
    lab, fleet = drill_lab
    fleet.run("hv-b1", single("Start-VMFailover", VMName=["dr01"], AsTest=True))  # an operator's own test failover
    members = [Member("dr01", "hv-a1", "hv-b1"), Member("dr02", "hv-a1", "hv-b1")]
    out = drill_groups.run(drill.Drill(fleet, DrillStore(redis_conn), "t-other", drill.DrillOptions(poll_s=0.1)), one_group(members))
    rows = {r["vm"]: r for r in out["vms"]}
    assert rows["dr01"]["result"] == "refused" and "already exists" in rows["dr01"]["problems"][0]
    assert rows["dr02"]["result"] == "passed"
    assert [vm.name for vm in lab_test_vms(lab.fleet)] == ["dr01 - Test"]


def test_a_read_failure_before_any_step_removes_nothing(drill_lab: tuple[Lab, Fleet], redis_conn: redis.Redis) -> None:
    lab, fleet = drill_lab
    fleet.run("hv-b1", single("Start-VMFailover", VMName=["dr01"], AsTest=True))  # an operator's own test failover
    lab.control("hv-b1", "fault", {"code": 500, "reason": "injected", "count": 2})
    row = drill_groups.drill_vm(drill.Drill(fleet, DrillStore(redis_conn), "t-readfail"), Member("dr01", "hv-a1", "hv-b1"))
    assert row["result"] == "failed" and row["problems"], row
    assert [vm.name for vm in lab_test_vms(lab.fleet)] == ["dr01 - Test"]
    assert not [e for e in lab.command_log("hv-b1") if e.cmdlet == "Stop-VMFailover"]
