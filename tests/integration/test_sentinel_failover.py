"""Redis Sentinel: a master, a replica and three sentinels on loopback (tests.support.sentinel_lab), and real
`hvbot serve`, `hvbot worker` and `hvbot monitor` processes reaching Redis only through the sentinels
(HVBOT_REDIS_SENTINELS; their REDIS_URL points nowhere).

Across a `SENTINEL FAILOVER`, a failover approval requested before it is approved and run after it, a backup
window opened before it is resumed after it (by its scheduled end job or the monitor's housekeeping, whichever
comes first), and the monitor keeps its lease and goes on sweeping. The lab's command log shows each mutating
Hyper-V command exactly once: nothing lost, nothing run twice. No sleeps: every wait has a condition and a deadline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rq import Queue
from rq.serializers import JSONSerializer

from bot.adapters.fake_slack import FakeSlack
from bot.redis_client import WORKER, connect
from bot.settings import Settings
from jobs.backup.tasks import enqueue_backup_job, run_window_start
from jobs.backup.window import WindowStatus, WindowStore
from jobs.monitor import heartbeat
from lab.fleet import Lab
from tests.integration.bot.test_failover_chat import _buttons
from tests.support.fixtures_redis import wait_until
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
from tests.support.sentinel_lab import MASTER_NAME, SentinelLab

QUEUE = "hvbot-sentinel-test"
OP, APPROVER = "U0OP", "U0AP1"
APPROVAL_SECRET = "sentinel-test-approval-secret-0123"
WINDOW_VM, FAILOVER_VM = "web01", "fw01"
TEST_FAILOVER = ["Start-VMFailover", "Start-VM"]  # -AsTest, then the test VM is started
MUTATING = ("Start-VMFailover", "Stop-VMFailover", "Suspend-VMReplication", "Resume-VMReplication", "Start-VM",
            "Stop-VM", "Complete-VMFailover", "Set-VMReplication")


@pytest.fixture
def sentinels() -> Iterator[SentinelLab]:
    lab = SentinelLab().start()
    yield lab
    lab.stop()


class World:
    def __init__(self, lab: Lab, sentinels: SentinelLab, slack: FakeSlack, inventory: Path) -> None:
        self.lab, self.sentinels, self.slack = lab, sentinels, slack
        self.env = {"HVBOT_REDIS_SENTINELS": sentinels.sentinels, "HVBOT_REDIS_MASTER_NAME": MASTER_NAME,
                    "REDIS_URL": "redis://127.0.0.1:1/0",  # never used when sentinels are set: a wrong one proves it
                    "HVBOT_INVENTORY": str(inventory), "SLACK_API_URL": slack.api_url, "SLACK_BOT_TOKEN": BOT_TOKEN,
                    "SLACK_SIGNING_SECRET": SIGNING_SECRET, "HVBOT_QUEUE": QUEUE, "HVBOT_LOG_JSON": "false",
                    "HVBOT_APPROVAL_SECRET": APPROVAL_SECRET, "HVBOT_APPROVAL_CHANNEL": "C0ONCALL",
                    "HVBOT_OPERATORS": OP, "HVBOT_APPROVERS": APPROVER, "HVBOT_CHANNEL_POST_INTERVAL_SECONDS": "0"}
        # the test's own client reads state through the sentinels too, so it follows the failover
        settings = Settings(redis_sentinels=sentinels.sentinels.split(","), redis_master_name=MASTER_NAME)
        self.conn = connect(settings, WORKER)
        self.port = free_port()
        self.processes = [
            HvbotProcess(["serve", "--port", str(self.port), "--host", "127.0.0.1"], self.env, "listening on"),
            HvbotProcess(["worker", "--simple", "--name", "sentinel-test-worker"], self.env),
            HvbotProcess(["monitor", "--tick", "0.5"], self.env, ready_line="hvbot monitor:"),
        ]
        self.serve, self.worker, self.monitor = self.processes

    def send(self, body: str) -> None:
        status, answer = post(self.port, body, signed_headers(body))
        assert status == 200, answer

    def all_running(self) -> None:
        for process in self.processes:
            assert process.proc.poll() is None, "".join(process.lines[-30:])

    def mutations(self, vm: str) -> list[str]:
        return [e.cmdlet for e in self.lab.command_log() if e.cmdlet in MUTATING
                and any(vm in json.dumps(v, default=str) for _, v in e.parameters)]

    def request_failover(self, text: str) -> str:
        """Slash command -> preview (the worker process) -> Request click; returns the card's Approve value."""
        self.send(slash_body(text, user=OP))
        preview = self.slack.wait_for(lambda calls: next(
            (c for c in calls if c.method == "chat.postEphemeral" and _buttons(c, "hvbot_fo_request")), None), 120)
        value = _buttons(preview, "hvbot_fo_request")[0]
        self.send(action_body("hvbot_fo_request", value, user=OP, response_url=self.slack.response_url("req")))
        card = self.slack.wait_for(lambda calls: next(
            (c for c in calls if c.method == "chat.postMessage" and _buttons(c, "hvbot_fo_approve")), None), 60)
        return _buttons(card, "hvbot_fo_approve")[0]

    def approve(self, value: str) -> None:
        self.send(action_body("hvbot_fo_approve", value, user=APPROVER, channel="C0ONCALL", message_ts="9.9",
                              response_url=self.slack.response_url("approve")))

    def monitor_beat(self) -> float:
        beat = heartbeat.read(self.conn)
        return beat.at if beat is not None else 0.0

    def start_window(self, seconds: int) -> None:
        queue = Queue(QUEUE, connection=self.conn, serializer=JSONSerializer)
        reply = {"channel": "C100", "user": OP, "command": f"backup-window {WINDOW_VM} {seconds}s", "here": True}
        enqueue_backup_job(queue, run_window_start, {"vm": WINDOW_VM, "seconds": seconds, "key": "bw-sentinel",
                                                     "reply": reply, "user": OP}, "bw-sentinel", 300)


@pytest.fixture
def world(make_lab: Callable[..., Lab], sentinels: SentinelLab, tmp_path: Path) -> Iterator[World]:
    lab = make_lab()
    inventory = lab.write_inventory(tmp_path / "inventory.yml")
    with FakeSlack() as slack:
        w = World(lab, sentinels, slack, inventory)
        try:
            w.serve.wait_ready(120)
            w.monitor.wait_ready(120)
            yield w
        finally:
            for process in w.processes:
                process.stop()


@pytest.mark.timeout(360)  # about 72 s on a quiet machine; five Redis processes, three of hvbot: room to spare
def test_an_approval_and_a_backup_window_survive_a_sentinel_failover_once_each(world: World) -> None:
    before = world.sentinels.master_port()
    world.start_window(seconds=15)
    wait_until(lambda: world.mutations(WINDOW_VM) == ["Suspend-VMReplication"], 120, "the window paused replication")
    approve_value = world.request_failover(f"failover {FAILOVER_VM} test")
    assert world.mutations(FAILOVER_VM) == [], "nothing runs before the approval"

    after = world.sentinels.failover()
    assert after != before
    promoted_at = time.time()

    world.approve(approve_value)  # the approval, stored on the old master, is read from the new one
    wait_until(lambda: world.mutations(FAILOVER_VM) == TEST_FAILOVER, 120, "the approved test failover ran")
    world.approve(approve_value)  # a second click after the failover: refused, not a second run
    store = WindowStore(world.conn)
    wait_until(lambda: getattr(store.get(WINDOW_VM), "status", None) is WindowStatus.RESUMED, 120,
               "the window's scheduled end resumed replication")

    assert world.mutations(WINDOW_VM) == ["Suspend-VMReplication", "Resume-VMReplication"]
    updates = json.dumps([c.args for c in world.slack.calls_to("chat.update")], ensure_ascii=False)
    assert "done" in updates
    assert world.mutations(FAILOVER_VM) == TEST_FAILOVER, "run once, whatever the clicks and the failover"
    wait_until(lambda: world.monitor_beat() > promoted_at, 120, "the monitor completes a round on the new master")
    world.all_running()
    assert world.conn.connection_pool.get_master_address()[1] == after  # type: ignore[attr-defined]


def test_check_config_reaches_redis_through_the_sentinels(sentinels: SentinelLab, lab_inventory_path: Path,
                                                          fake_slack: FakeSlack) -> None:
    env = {"HVBOT_REDIS_SENTINELS": sentinels.sentinels, "HVBOT_REDIS_MASTER_NAME": MASTER_NAME,
           "REDIS_URL": "redis://127.0.0.1:1/0", "HVBOT_INVENTORY": str(lab_inventory_path),
           "SLACK_API_URL": fake_slack.api_url, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}
    result = subprocess.run([str(Path(sys.executable).with_name("hvbot")), "check-config"], capture_output=True,
                            text=True, timeout=120, env={**os.environ, **env})
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    master = f"master '{MASTER_NAME}' of sentinels {sentinels.sentinels.replace(',', ', ')}"
    assert any(line.startswith("ok   redis: PING answered") and master in line for line in lines), result.stdout
    assert f"ok   redis sentinels: 3 of 3 answer and reach the quorum for '{MASTER_NAME}'" in lines
    assert "ok   redis persistence: appendonly yes" in lines

    sentinels.stop_one_sentinel()
    lines = subprocess.run([str(Path(sys.executable).with_name("hvbot")), "check-config"], capture_output=True,
                           text=True, timeout=120, env={**os.environ, **env}).stdout.splitlines()
    assert any(line.startswith("WARN redis sentinels: 2 of 3 answer") for line in lines), lines
