"""A site failover executed by a real `hvbot worker`: the live card in (fake) Slack, the summary and its next
actions, and a worker SIGKILLed mid-plan (the card says where every VM stands; Resume runs only the rest).

The approval flow that enqueues ``run_recovery`` is the preview's; here the approved job is enqueued directly,
with a ResolvedPlan built in the test, onto the queue a real worker serves (Resume through its click and a second
person's approval: test_recovery_resume_chat.py). No sleeps: the test waits on the
fake Slack's recorded calls and on Redis with deadlines.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue
from rq.serializers import JSONSerializer
from slack_sdk import WebClient

from bot.adapters.fake_slack import FakeSlack
from jobs.keys import ALIVE_KEY
from jobs.locks import VmLock
from jobs.queue import enqueue
from jobs.recovery.model import Member, OnFailure, PlanGroup, ResolvedGroup, ResolvedPlan, Scope, ScopeKind
from jobs.recovery.progress import RunProgress
from jobs.recovery.tasks import remaining_plan, run_recovery
from lab.fleet import Lab
from tests.support.fixtures_redis import TEST_QUEUE, test_redis_url, wait_until
from tests.support.fixtures_slack import BOT_TOKEN, SIGNING_SECRET, HvbotProcess, free_port

ONCALL, OP = "C0ONCALL", "U0OP"
REPLICA = {"hv-a1": "hv-b1", "hv-a2": "hv-b2"}


def _group(name: str, vms: list[tuple[str, str]], **settings: Any) -> ResolvedGroup:
    return ResolvedGroup(name, PlanGroup(name, tuple(v for v, _ in vms), **settings),
                         tuple(Member(v, p, REPLICA[p]) for v, p in vms))


def _text(call: Any) -> str:
    return json.dumps(call.args, ensure_ascii=False)


def _buttons(call: Any) -> dict[str, str]:
    blocks = call.args.get("blocks")
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks or []
    return {e["action_id"]: e["value"] for b in blocks if b.get("type") == "actions" for e in b["elements"]}


class World:
    def __init__(self, lab: Lab, fake: FakeSlack, conn: redis.Redis, env: dict[str, str]) -> None:
        self.lab, self.fake, self.conn, self.env = lab, fake, conn, env
        self.queue = Queue(TEST_QUEUE, connection=conn, serializer=JSONSerializer)
        self.slack = WebClient(token=BOT_TOKEN, base_url=fake.api_url)

    def card(self) -> dict[str, str]:
        posted = self.slack.chat_postMessage(channel=ONCALL, text="Site failover approved")
        return {"channel": str(posted["channel"]), "ts": str(posted["ts"])}

    def start(self, approval_id: str, plan: ResolvedPlan, card: dict[str, str]) -> None:
        reply = {"channel": ONCALL, "user": OP, "command": "failover --site site-a unplanned"}
        enqueue(self.queue, run_recovery, {"approval_id": approval_id, "plan": plan.to_dict(), "kind": "unplanned",
                                           "reply": reply, "card": card},
                job_id=f"rp{approval_id}", description="site failover", timeout=600, report_failure=True)

    def card_update(self, card: dict[str, str], needle: str, timeout: float = 60) -> Any:
        return self.fake.wait_for(lambda calls: next(
            (c for c in calls if c.method == "chat.update" and c.args.get("ts") == card["ts"] and needle in _text(c)),
            None), timeout)

    def state(self, host: str, vm: str) -> str:
        return str(self.lab.fleet.vm(host, vm).state)


@pytest.fixture
def world(make_lab: Callable[..., Lab], tmp_path: Path, fake_slack: FakeSlack,
          redis_conn: redis.Redis) -> Iterator[World]:
    lab = make_lab()
    inventory = lab.write_inventory(tmp_path / "inventory.yml")
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake_slack.api_url,
           "REDIS_URL": test_redis_url(), "HVBOT_INVENTORY": str(inventory), "HVBOT_LOG_JSON": "false",
           "HVBOT_QUEUE": TEST_QUEUE, "HVBOT_ABANDONED_CHECK_SECONDS": "0.5", "HVBOT_DEADLINE_S": "60",
           "HVBOT_OPERATORS": OP, "HVBOT_APPROVERS": "U0AP1", "HVBOT_APPROVAL_CHANNEL": ONCALL,
           "HVBOT_RECOVERY_HEARTBEAT_POLL_S": "0.2", "HVBOT_RECOVERY_HEARTBEAT_SECONDS": "0.5"}
    for host in ("hv-a1", "hv-a2"):  # site A loses power
        lab.control(host, "power_loss", {})
    yield World(lab, fake_slack, redis_conn, env)


def test_site_failover_card_shows_the_table_then_summary_and_next_actions(world: World) -> None:
    first = [("fw01", "hv-a1"), ("dc01", "hv-a1"), ("dc02", "hv-a2")]
    second = [("web01", "hv-a1"), ("sql01", "hv-a1"), ("web02", "hv-a2")]
    world.lab.control("hv-b1", "fail_next", {"host": "hv-b1", "cmdlet": "Start-VMFailover", "vm": "sql01"})
    plan = ResolvedPlan(Scope(ScopeKind.SITE, "site-a"), "", (_group("core", first), _group("apps", second)))
    worker = HvbotProcess(["worker", "--name", f"rec-{free_port()}"], world.env)
    try:
        card = world.card()
        world.start("ap1", plan, card)
        final = world.card_update(card, "finished", 120)
    finally:
        worker.stop()
    updates = [c for c in world.fake.calls_to("chat.update") if c.args.get("ts") == card["ts"]]
    assert "running" in _text(updates[0]) and "fw01" in _text(updates[0])  # the live table came first
    shown = _text(final)
    assert "✓ fw01" in shown and "✓ web02" in shown and "✗ sql01" in shown and "Recovery time" in shown
    assert "core" in shown and "apps" in shown
    buttons = _buttons(final)
    assert buttons["hvbot_recovery_command_complete"] == "failover --site site-a complete"
    assert buttons["hvbot_recovery_command_cancel"] == "failover --site site-a cancel"
    assert buttons["hvbot_recovery_command_reverse"] == "failover --site site-a reverse"
    assert buttons["hvbot_recovery_resume"] == "ap1"  # sql01 is not done: it can be retried after a new approval
    for vm, primary in first + second:
        assert world.state(REPLICA[primary], vm) == ("Off" if vm == "sql01" else "Running"), vm
    thread = [c for c in world.fake.calls_to("chat.postMessage") if c.args.get("thread_ts") == card["ts"]]
    assert len(thread) == 1 and "sql01" in _text(thread[0]) and "fw01" not in _text(thread[0])
    log = world.lab.command_log()
    boots = [i for i, e in enumerate(log) if e.cmdlet == "Start-VMFailover"
             and {str(v) for _, val in e.parameters for v in (val if isinstance(val, list) else [val])} & {"web01", "web02"}]
    beats = [i for i, e in enumerate(log) if e.cmdlet == "Get-VM" and any(
        isinstance(val, list) and "dc01" in [str(v) for v in val] for _, val in e.parameters)]
    assert beats and boots and max(beats) < min(boots)  # group 2 started after group 1's heartbeats


def test_worker_killed_mid_plan_card_reports_states_and_resume_runs_only_the_rest(world: World) -> None:
    first = [("fw01", "hv-a1"), ("dc02", "hv-a2")]
    second = [("web01", "hv-a1"), ("sql01", "hv-a1"), ("file01", "hv-a1"), ("web02", "hv-a2"), ("sql02", "hv-a2"),
              ("file02", "hv-a2")]
    plan = ResolvedPlan(Scope(ScopeKind.SITE, "site-a"), "",
                        (_group("core", first, on_failure=OnFailure.STOP), _group("apps", second, wait_heartbeat=False)))
    env = world.env | {"HVBOT_RECOVERY_PER_HOST_PARALLEL": "1"}
    port = free_port()
    server = HvbotProcess(["serve", "--port", str(port), "--host", "127.0.0.1"], env, "listening on")
    worker = HvbotProcess(["worker", "--name", f"doomed-rec-{port}"], env)
    progress = RunProgress(world.conn, "ap2")
    try:
        server.wait_ready()
        for host in ("hv-b1", "hv-b2"):  # each exchange takes 0.1 s: the plan takes seconds
            world.lab.control(host, "latency", {"seconds": 0.1})
        card = world.card()
        world.start("ap2", plan, card)

        def some_apps_done() -> bool:
            vms = progress.snapshot().get("vms", [])
            apps = [v["state"] for v in vms if v["group"] == "apps"]
            return "done" in apps and "waiting" in apps

        wait_until(some_apps_done, 90, "a VM of group 2 done while others wait")
        horse = int(wait_until(lambda: world.conn.get(ALIVE_KEY.format("rpap2")), 10, "heartbeat"))  # type: ignore[arg-type]
        os.killpg(worker.proc.pid, signal.SIGKILL)  # the worker and its scheduler, as if the machine died
        os.kill(horse, signal.SIGKILL)  # the work horse runs in a session of its own
        killed_at = time.monotonic()
        final = world.card_update(card, "worker died", 60)
        assert time.monotonic() - killed_at < 60
    finally:
        worker.stop()
        for host in ("hv-b1", "hv-b2"):
            world.lab.control(host, "latency", {"seconds": 0})
    shown = _text(final)
    at_kill = {v["vm"]: v["state"] for v in progress.snapshot()["vms"]}
    done = {vm for vm, state in at_kill.items() if state == "done"}
    assert {"fw01", "dc02"} <= done and done != {vm for vm, _ in first + second}
    assert "running" not in at_kill.values() and "heartbeat" not in at_kill.values()  # now "interrupted"
    for vm in done:
        assert f"✓ {vm}" in shown
    assert _buttons(final)["hvbot_recovery_resume"] == "ap2"
    for vm, _ in first + second:
        wait_until(lambda vm=vm: VmLock(world.conn, vm).holder() is None, 10, f"{vm} lock released")
    assert len([c for c in world.fake.calls_to("chat.update") if "worker died" in _text(c)]) == 1

    rest = remaining_plan(world.conn, "ap2")
    assert rest is not None and {m.vm for m in rest.vms()} == {vm for vm, _ in first + second} - done
    mark = len(world.lab.command_log())
    again = HvbotProcess(["worker", "--name", f"resume-rec-{port}"], env)
    try:
        card2 = world.card()
        world.start("ap3", rest, card2)
        world.card_update(card2, "finished", 120)
    finally:
        again.stop()
        server.stop()
    touched = {str(v) for e in world.lab.command_log()[mark:] if e.cmdlet in ("Start-VMFailover", "Start-VM")
               for _, val in e.parameters for v in (val if isinstance(val, list) else [val])}
    assert touched and not touched & done  # only the VMs not done were run again
    waiting = {vm for vm, state in at_kill.items() if state == "waiting"}
    for vm, primary in second:
        if vm in waiting:
            assert world.state(REPLICA[primary], vm) == "Running", vm
