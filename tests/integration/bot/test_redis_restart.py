"""Redis restarts under real `hvbot monitor` and `hvbot worker` processes, with the lab and the fake Slack.

Each test starts its own redis-server (tests.support.redis_server) and restarts it with its data (SHUTDOWN SAVE,
same directory) and without (SHUTDOWN NOSAVE, dump removed), during an alert and during a backup window. After
every restart: the monitor still runs and holds its lease, the worker is registered again, the monitor's health
check passes, alerts are posted, replication is resumed (data kept) or offered for resume (data lost), and no
Hyper-V command that changes anything runs twice. No sleeps: every wait has a deadline and a condition.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue
from rq.serializers import JSONSerializer

from bot.adapters.fake_slack import Call, FakeSlack
from jobs.backup.tasks import enqueue_backup_job, run_window_start
from jobs.backup.window import WindowStatus, WindowStore
from jobs.keys import MONITOR_LEASE_KEY, REPLICATION_LAST_KEY, SWEEP_PENDING_KEY
from jobs.monitor.actions import run_resume
from jobs.queue import enqueue, new_job_id
from lab.fleet import Lab
from lab.fleet_file import generated_fleet
from tests.support.fixtures_redis import wait_until
from tests.support.fixtures_slack import HvbotProcess
from tests.support.redis_server import OwnRedis

QUEUE = "hvbot-redis-restart-test"
WORKER = "restart-test-worker"
MUTATING = ("Suspend-VMReplication", "Resume-VMReplication")


class World:
    """The lab, our Redis, the fake Slack, and one monitor and one worker process."""

    def __init__(self, lab: Lab, server: OwnRedis, slack: FakeSlack, inventory: Path) -> None:
        self.lab, self.server, self.slack = lab, server, slack
        self.env = {"REDIS_URL": server.url, "HVBOT_INVENTORY": str(inventory), "SLACK_API_URL": slack.api_url,
                    "SLACK_BOT_TOKEN": "xoxb-test", "HVBOT_QUEUE": QUEUE, "HVBOT_ALERT_GROUP_WAIT_SECONDS": "0",
                    "HVBOT_ALERT_CRITICAL_CHANNEL": "#oncall", "HVBOT_APPROVAL_SECRET": "test-approval-secret-0123",
                    "HVBOT_LOG_JSON": "false", "HVBOT_WORKER_REGISTRATION_CHECK_SECONDS": "0.5",
                    "HVBOT_CHANNEL_POST_INTERVAL_SECONDS": "0"}
        self.worker = HvbotProcess(["worker", "--simple", "--name", WORKER], self.env)
        self.monitor = HvbotProcess(["monitor", "--tick", "0.5"], self.env, ready_line="hvbot monitor:")

    def client(self) -> redis.Redis:
        return self.server.client()

    def stop(self) -> None:
        self.monitor.stop()
        self.worker.stop()

    def restart_redis(self, keep_data: bool) -> float:
        """Restart our redis-server; returns the time it answered again."""
        self.server.restart(keep_data=keep_data)
        return time.time()

    def wait_swept_since(self, host: str, since: float, timeout: float = 60) -> None:
        """Until a sweep that read `host` after `since` has finished (stored, alerts delivered). Judged by the lab's
        log, not the stored sweep time: a sweep queued before the restart is kept with the data and runs after it,
        stamped with the time it was queued, and the monitor's next round is a minute away (a CI failure)."""
        client = self.client()

        def read_after() -> bool:  # the sweep's whole-host read; the window's own reads name the VM
            return any(e.cmdlet == "Get-VMReplication" and e.time >= since and "VMName" not in dict(e.parameters)
                       for e in self.lab.command_log(host))

        def done() -> bool:
            return (read_after() and bool(client.hexists(REPLICATION_LAST_KEY, host))
                    and not client.exists(SWEEP_PENDING_KEY.format(host)))

        wait_until(done, timeout, f"a sweep of {host} after {since}")

    def assert_survived(self) -> None:
        """The monitor runs and holds the lease, the worker is registered, the health check passes."""
        client = self.client()
        assert self.monitor.proc.poll() is None, "".join(self.monitor.lines[-30:])
        assert self.worker.proc.poll() is None, "".join(self.worker.lines[-30:])
        wait_until(lambda: client.exists(MONITOR_LEASE_KEY), 30, "the monitor holds its lease")
        wait_until(lambda: client.sismember("rq:workers", f"rq:worker:{WORKER}"), 30, "worker in rq:workers")
        assert client.sismember(f"rq:workers:{QUEUE}", f"rq:worker:{WORKER}")
        health = subprocess.run([str(Path(sys.executable).with_name("hvbot")), "monitor", "--health"],
                                env={**os.environ, **self.env}, capture_output=True, text=True, timeout=60)
        assert health.returncode == 0 and health.stdout.startswith("healthy: monitor last swept"), health.stdout

    def mutations(self, vm: str) -> list[str]:
        return [e.cmdlet for e in self.lab.command_log() if e.cmdlet in MUTATING
                and any(vm in json.dumps(v, default=str) for _, v in e.parameters)]

    def oncall_posts(self, vm: str) -> list[Call]:
        return [c for c in self.slack.calls if c.method == "chat.postMessage" and c.status == 200
                and c.args.get("channel") == "#oncall" and vm in _blocks_text(c)]


@pytest.fixture
def world(make_lab: Any, own_redis: OwnRedis, tmp_path: Path) -> Iterator[World]:
    lab = make_lab(fleet=generated_fleet(2, 2))
    inventory = lab.write_inventory(tmp_path / "inventory.yml")
    with FakeSlack() as slack:
        w = World(lab, own_redis, slack, inventory)
        try:
            w.monitor.wait_ready()
            yield w
        finally:
            w.stop()


def _blocks_text(call: Call) -> str:
    blocks = call.args.get("blocks")
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks or []
    return json.dumps(blocks) + str(call.args.get("text", ""))


def _resume_offered(call: Call, vm: str) -> bool:
    """The alert's row for `vm` carries an action labelled Resume."""
    blocks = call.args.get("blocks")
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks or []
    for block in blocks:
        text = json.dumps(block.get("text", {}))
        accessory = block.get("accessory") or {}
        labels = [o.get("text", {}).get("text") for o in accessory.get("options", [])]
        if vm in text and "Resume" in labels:
            return True
    return False


def test_redis_restarts_during_an_alert_keep_the_monitor_alerting(world: World) -> None:
    vm = "vm-001-0001"
    world.lab.control("hv-001", "replication", {"vm": vm, "health": "Critical"})
    world.slack.wait_for(lambda calls: world.oncall_posts(vm), 60)
    world.assert_survived()

    since = world.restart_redis(keep_data=True)
    world.wait_swept_since("hv-001", since)
    world.assert_survived()
    assert len(world.oncall_posts(vm)) == 1, "the kept alert state knows the alert was posted"

    since = world.restart_redis(keep_data=False)
    world.wait_swept_since("hv-001", since)
    world.slack.wait_for(lambda calls: len(world.oncall_posts(vm)) == 2, 30)
    world.assert_survived()
    assert len(world.oncall_posts(vm)) == 2  # Redis forgot the first message: the rebuilt alert is one new post
    assert world.mutations(vm) == []


def _start_window(world: World, vm: str, seconds: int) -> None:
    queue = Queue(QUEUE, connection=world.client(), serializer=JSONSerializer)
    reply = {"channel": "C100", "user": "U100", "command": f"backup-window {vm} {seconds}s", "here": True}
    enqueue_backup_job(queue, run_window_start, {"vm": vm, "seconds": seconds, "key": "bw-restart", "reply": reply,
                                                 "user": "U100"}, "bw-restart", 300)
    wait_until(lambda: world.mutations(vm) == ["Suspend-VMReplication"], 60, "replication paused")


def _replication_state(lab: Lab, host: str, vm: str) -> str:
    found = next(v for v in lab.fleet.hosts[host].vms if v.name == vm)
    return str(found.replication.state) if found.replication else ""


def test_redis_restart_with_data_during_a_backup_window_resumes_it_once(world: World) -> None:
    vm = "vm-000-0000"
    _start_window(world, vm, seconds=12)
    since = world.restart_redis(keep_data=True)
    world.wait_swept_since("hv-000", since)
    world.assert_survived()
    store = WindowStore(world.client())
    wait_until(lambda: getattr(store.get(vm), "status", None) is WindowStatus.RESUMED, 120,
               "the window resumed at its end")
    assert world.mutations(vm) == ["Suspend-VMReplication", "Resume-VMReplication"]
    assert _replication_state(world.lab, "hv-000", vm) == "Replicating"
    assert world.oncall_posts(vm) == [], "inside its window the paused VM is not an alert"
    world.assert_survived()


def test_redis_restart_without_data_during_a_backup_window_offers_resume(world: World) -> None:
    vm = "vm-000-0000"
    _start_window(world, vm, seconds=12)
    since = world.restart_redis(keep_data=False)
    # The window record and its scheduled end went with the data: the monitor sweeps at once and finds the VM
    # Suspended with no window, which is an alert with a Resume action; nothing resumes it behind anyone's back.
    post = world.slack.wait_for(lambda calls: next(iter(world.oncall_posts(vm)), None), 60)
    assert _resume_offered(post, vm), _blocks_text(post)
    assert "Suspended" in _blocks_text(post)
    world.wait_swept_since("hv-000", since)
    world.assert_survived()
    assert world.mutations(vm) == ["Suspend-VMReplication"]

    # The Resume the alert offers (the menu queues this job): it runs once and replication is back.
    queue = Queue(QUEUE, connection=world.client(), serializer=JSONSerializer)
    reply = {"channel": "#oncall", "user": "U100", "command": f"resume {vm} --host hv-000"}
    enqueue(queue, run_resume, {"host": "hv-000", "vm": vm, "resynchronize": False, "reply": reply},
            job_id=new_job_id(), timeout=120, description="resume from the alert")
    wait_until(lambda: _replication_state(world.lab, "hv-000", vm) == "Replicating", 60, "replication resumed")
    assert world.mutations(vm) == ["Suspend-VMReplication", "Resume-VMReplication"]
    assert len(world.oncall_posts(vm)) == 1
