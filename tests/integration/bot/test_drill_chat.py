"""A failover drill of a 20-VM recovery plan through signed Slack requests, a real `hvbot worker` and the lab.

The lab's clock is frozen, so the test VMs boot only when the test advances it: half the guests report heartbeat
30 s after their start, half 60 s. The plan's second group is drilled only once every guest of the first answered,
as a failover would run it. The report (posted, and attached as a JSON file) must give exactly those times and
each recovery point's age on the lab's clock, and no test VM may be left. A second test SIGKILLs the worker while
every test VM is up (the first group's answered, the second's awaiting their heartbeats): the chat server's
abandoned-job watcher must remove them all and say so. No sleeps: the test waits on the lab, Redis and the fake Slack's recorded calls, with deadlines.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.adapters.fake_slack import FakeSlack
from jobs.keys import ALIVE_KEY, DRILL_RUNS_KEY
from lab.fleet import Lab
from tests.support.drill_fleet import boot_of, drill_fleet, lab_test_vms, write_plan
from tests.support.fixtures_redis import TEST_QUEUE, test_redis_url, wait_until
from tests.support.fixtures_slack import (
    BOT_TOKEN,
    SIGNING_SECRET,
    HvbotProcess,
    action_body,
    free_port,
    post,
    signed_headers,
    slash_body,
)

OP, APPROVER, ONCALL = "U0OP", "U0AP1", "C0ONCALL"
COUNT = 20


def _text(call: Any) -> str:
    return json.dumps(call.args, ensure_ascii=False)


def _buttons(call: Any, action_id: str) -> list[str]:
    blocks = call.args.get("blocks")
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks or []
    return [e["value"] for b in blocks if b.get("type") == "actions" for e in b["elements"]
            if e.get("action_id") == action_id]


def _first(fake: FakeSlack, match: Callable[[Any], bool], timeout: float = 60) -> Any:
    return fake.wait_for(lambda calls: next((c for c in calls if match(c)), None), timeout)


class World:
    def __init__(self, lab: Lab, fake: FakeSlack, redis_conn: redis.Redis, tmp: Path) -> None:
        self.lab, self.fake, self.redis = lab, fake, redis_conn
        write_plan(tmp / "plans", "dr-plan", COUNT)
        self.port = free_port()
        env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
               "SLACK_API_URL": fake.api_url, "REDIS_URL": test_redis_url(),
               "HVBOT_INVENTORY": str(lab.write_inventory(tmp / "inventory.yml")), "HVBOT_LOG_JSON": "false",
               "HVBOT_QUEUE": TEST_QUEUE, "HVBOT_ABANDONED_CHECK_SECONDS": "0.5", "HVBOT_DEADLINE_S": "60",
               "HVBOT_CHANNEL_POST_INTERVAL_SECONDS": "0", "HVBOT_OPERATORS": OP, "HVBOT_APPROVERS": APPROVER,
               "HVBOT_APPROVAL_CHANNEL": ONCALL, "HVBOT_RECOVERY_PLANS_DIR": str(tmp / "plans"),
               "HVBOT_ALERT_CRITICAL_CHANNEL": "C0PAGE", "HVBOT_DRILL_PARALLEL": str(COUNT),
               "HVBOT_DRILL_POLL_S": "0.5"}
        self.server = HvbotProcess(["serve", "--port", str(self.port), "--host", "127.0.0.1"], env, "listening on")
        self.worker = HvbotProcess(["worker", "--name", f"drill-{self.port}"], env)
        self.server.wait_ready()

    def stop(self) -> None:
        self.server.stop()
        self.worker.stop()

    def request_and_approve(self) -> None:
        body = slash_body("drill dr-plan", user=OP)
        status, answer = post(self.port, body, signed_headers(body))
        assert status == 200 and "second person" in answer, answer
        card = _first(self.fake, lambda c: c.method == "chat.postMessage" and _buttons(c, "hvbot_drill_approve"))
        assert card.args["channel"] == ONCALL
        click = action_body("hvbot_drill_approve", _buttons(card, "hvbot_drill_approve")[0], user=APPROVER,
                            channel=ONCALL, message_ts=card.response["ts"],
                            response_url=self.fake.response_url("approve"))
        assert post(self.port, click, signed_headers(click))[0] == 200

    def running_test_vms(self) -> int:
        return sum(1 for vm in lab_test_vms(self.lab.fleet) if vm.state == "Running")

    def running_test_names(self) -> set[str]:
        return {vm.name.removesuffix(" - Test") for vm in lab_test_vms(self.lab.fleet) if vm.state == "Running"}

    def answered(self) -> set[str]:
        return {vm for vm, state in self.vm_states().items() if state == "heartbeat"}

    def vm_states(self) -> dict[str, str]:
        states: dict[str, str] = {}
        for key in self.redis.scan_iter("hvbot:drill:vms:*"):
            states.update({k.decode(): json.loads(v)["state"] for k, v in self.redis.hgetall(key).items()})
        return states


@pytest.fixture
def world(make_lab: Callable[..., Lab], tmp_path: Path, fake_slack: FakeSlack,
          redis_conn: redis.Redis) -> Iterator[World]:
    lab = make_lab(drill_fleet(COUNT))
    w = World(lab, fake_slack, redis_conn, tmp_path)
    try:
        yield w
    finally:
        w.stop()


def test_a_20_vm_drill_reports_the_lab_timeline_and_leaves_no_test_vm(world: World) -> None:
    frozen = datetime.fromisoformat(world.lab.control(None, "clock", {"freeze": True})["now"])
    with world.lab.fleet.lock:  # the latest recovery point of each replica, on the lab's clock
        points = {vm.name: max(c.creation_time for c in vm.checkpoints) for vm in world.lab.fleet.host("hv-b1").vms}
    world.request_and_approve()
    first = {f"dr{i:02d}" for i in range(1, COUNT // 2 + 1)}  # the plan's first group; the rest come after it
    fast = {f"dr{i:02d}" for i in range(1, COUNT + 1) if boot_of(i) == 30}
    wait_until(lambda: world.running_test_names() == first, 60, "group 1's test VMs started, group 2's not")
    world.lab.control(None, "clock", {"advance_s": 30})
    wait_until(lambda: world.answered() == fast & first, 60, "group 1's 30 s guests' heartbeats")
    assert world.running_test_names() == first  # group 2 waits for all of group 1
    world.lab.control(None, "clock", {"advance_s": 30})
    wait_until(lambda: world.running_test_vms() == COUNT, 60, "group 2's test VMs started beside group 1's")
    world.lab.control(None, "clock", {"advance_s": 30})
    wait_until(lambda: world.answered() == first | fast, 60, "group 2's 30 s guests' heartbeats")
    world.lab.control(None, "clock", {"advance_s": 30})
    final = _first(world.fake, lambda c: c.method == "chat.update" and "Drill of plan dr-plan: PASSED" in _text(c), 60)
    upload = _first(world.fake, lambda c: c.method == "files.completeUploadExternal")
    file_id = json.loads(upload.args["files"])[0]["id"] if isinstance(upload.args["files"], str) else \
        upload.args["files"][0]["id"]
    report = json.loads(world.fake.files[file_id])
    assert upload.args.get("thread_ts") == final.args["ts"]
    assert report["ok"] and report["counts"]["passed"] == COUNT and len(report["vms"]) == COUNT
    assert [r["vm"] for r in report["vms"][:COUNT // 2]] == [f"dr{i:02d}" for i in range(1, COUNT // 2 + 1)]
    for row in report["vms"]:
        index = int(row["vm"][2:])
        assert row["time_to_heartbeat_s"] == boot_of(index), row  # the lab's boot time, to the second
        failed_over = frozen if row["vm"] in first else frozen + timedelta(seconds=60)  # group 2 at +60 s
        assert row["point_age_s"] == round((failed_over - points[row["vm"]]).total_seconds(), 1), row
        assert row["result"] == "passed" and row["cleaned"] and row["problems"] == []
    assert report["slowest_heartbeat_s"] == 60 and report["measured_recovery_s"] is not None
    assert lab_test_vms(world.lab.fleet) == []
    assert len([e for e in world.lab.command_log("hv-b1") if e.cmdlet == "Stop-VMFailover"]) == COUNT
    audit = [{k.decode(): v.decode() for k, v in f.items()} for _, f in world.redis.xrevrange("hvbot:audit", count=50)]
    assert any(a["command"] == "drill dr-plan (manual)" and a["outcome"] == "done" for a in audit)
    last = world.redis.hget("hvbot:drill:last", "plan:dr-plan")
    assert last is not None and json.loads(last)["measured_recovery_s"] == report["measured_recovery_s"]
    assert not world.redis.exists(DRILL_RUNS_KEY)


def test_a_worker_killed_mid_drill_leaves_no_test_vm_behind(world: World) -> None:
    world.lab.control(None, "clock", {"freeze": True})  # guests answer only when the test moves the clock
    world.request_and_approve()
    wait_until(lambda: world.running_test_vms() == COUNT // 2, 60, "group 1's test VMs started")
    world.lab.control(None, "clock", {"advance_s": 60})  # group 1 answers; group 2 starts and then waits
    wait_until(lambda: world.running_test_vms() == COUNT and sorted(world.vm_states().values())
               == ["heartbeat"] * (COUNT // 2) + ["started"] * (COUNT // 2), 60,
               "every test VM up: group 1's answered, group 2's awaiting their heartbeats")
    job_id = json.loads(next(iter(world.redis.hvals(DRILL_RUNS_KEY))))["job_id"]
    alive = wait_until(lambda: world.redis.get(ALIVE_KEY.format(job_id)), 10, "heartbeat")
    horse = int(alive)  # type: ignore[arg-type]
    os.killpg(world.worker.proc.pid, signal.SIGKILL)  # the worker and its scheduler, as if the machine died
    os.kill(horse, signal.SIGKILL)  # the work horse runs in a session of its own
    killed_at = time.monotonic()
    final = _first(world.fake, lambda c: c.method == "chat.update" and "ABANDONED" in _text(c), 60)
    assert time.monotonic() - killed_at < 60
    assert "test VMs cleaned up" in _text(final) and final.args["channel"] == "C100"  # the requester's channel
    assert not [c for c in world.fake.calls if "Nothing was changed" in _text(c)]  # a drill did change things
    assert lab_test_vms(world.lab.fleet) == []
    assert len([e for e in world.lab.command_log("hv-b1") if e.cmdlet == "Stop-VMFailover"]) == COUNT
    wait_until(lambda: not world.redis.exists(DRILL_RUNS_KEY), 10, "drill record settled")
    assert not [c for c in world.fake.calls_to("chat.postMessage") if c.args.get("channel") == "C0PAGE"]
