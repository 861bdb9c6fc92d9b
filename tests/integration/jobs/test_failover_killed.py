"""A real `hvbot worker` SIGKILLed in the middle of an approved failover.

`hvbot serve` and `hvbot worker` run as processes on real Redis, the lab answers over PSRP with latency so the
plan takes seconds, and the fake Slack records every call. After the first step is reported, the worker and its
work horse are killed. The abandoned-job watcher of `hvbot serve` (period HVBOT_ABANDONED_CHECK_SECONDS, here
0.5 s) must then update the approval card with the failure and the VM's real state and free the VM lock, within
60 s. No sleeps: the test waits on the fake Slack's recorded calls (and Redis) with deadlines.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from bot.adapters.fake_slack import FakeSlack
from jobs.failover.gather import gather, locate
from jobs.hyperv.fleet import Fleet
from jobs.hyperv.hosts import load_inventory
from jobs.keys import FAILOVER_RUNS_KEY as RUNS_KEY
from jobs.liveness import ALIVE_KEY
from jobs.locks import VmLock
from lab.fleet import Lab
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


def _buttons(call: Any, action_id: str) -> list[str]:
    blocks = call.args.get("blocks")
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks or []
    return [e["value"] for b in blocks if b.get("type") == "actions" for e in b["elements"]
            if e.get("action_id") == action_id]


def _click(port: int, fake: FakeSlack, action_id: str, value: str, user: str, channel: str = "C100") -> None:
    body = action_body(action_id, value, user=user, channel=channel, message_ts="9.9",
                       response_url=fake.response_url(f"r{time.monotonic_ns()}"))
    status, _ = post(port, body, signed_headers(body))
    assert status == 200


def _first(fake: FakeSlack, match: Callable[[Any], bool], timeout: float = 30) -> Any:
    return fake.wait_for(lambda calls: next((c for c in calls if match(c)), None), timeout)


def _text(call: Any) -> str:
    return json.dumps(call.args, ensure_ascii=False)


def test_worker_killed_mid_failover_reports_real_state_and_frees_the_lock(
        make_lab: Callable[..., Lab], tmp_path: Path, fake_slack: FakeSlack, redis_conn: redis.Redis) -> None:
    lab = make_lab()
    inventory = lab.write_inventory(tmp_path / "inventory.yml")
    port = free_port()
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake_slack.api_url,
           "REDIS_URL": test_redis_url(), "HVBOT_INVENTORY": str(inventory), "HVBOT_LOG_JSON": "false",
           "HVBOT_QUEUE": TEST_QUEUE, "HVBOT_ABANDONED_CHECK_SECONDS": "0.5", "HVBOT_DEADLINE_S": "120",
           "HVBOT_CHANNEL_POST_INTERVAL_SECONDS": "0", "HVBOT_OPERATORS": OP, "HVBOT_APPROVERS": APPROVER,
           "HVBOT_APPROVAL_CHANNEL": ONCALL}
    server = HvbotProcess(["serve", "--port", str(port), "--host", "127.0.0.1"], env, "listening on")
    worker = HvbotProcess(["worker", "--name", f"doomed-fo-{port}"], env)
    try:
        server.wait_ready()
        with Fleet(load_inventory(inventory)) as fleet:
            pair = locate(fleet, "fw01")
        body = slash_body("failover fw01 planned", user=OP)
        assert post(port, body, signed_headers(body))[0] == 200
        preview = _first(fake_slack, lambda c: c.method == "chat.postEphemeral" and _buttons(c, "hvbot_fo_request"))
        _click(port, fake_slack, "hvbot_fo_request", _buttons(preview, "hvbot_fo_request")[0], OP)
        card = _first(fake_slack, lambda c: c.method == "chat.postMessage" and _buttons(c, "hvbot_fo_approve"))
        card_ts = card.response["ts"]
        # the card's ts is stored right after it is posted, then the requester is told: Approve only after that
        _first(fake_slack, lambda c: c.method == "response_url" and "Requested (approval" in _text(c))
        for host in (pair.primary, pair.replica):  # each PSRP round trip now takes 0.4 s: the plan takes seconds
            lab.control(host, "latency", {"seconds": 0.4})
        _click(port, fake_slack, "hvbot_fo_approve", _buttons(card, "hvbot_fo_approve")[0], APPROVER, ONCALL)
        _first(fake_slack, lambda c: c.method == "chat.postMessage" and c.args.get("thread_ts") == card_ts
               and "step 1" in _text(c), 60)
        job_id = f"fo{_buttons(card, 'hvbot_fo_approve')[0].split('.')[0]}"
        horse = int(wait_until(lambda: redis_conn.get(ALIVE_KEY.format(job_id)), 10, "heartbeat"))  # type: ignore[arg-type]
        os.killpg(worker.proc.pid, signal.SIGKILL)  # the worker and its scheduler, as if the machine died
        os.kill(horse, signal.SIGKILL)  # the work horse runs in a session of its own
        killed_at = time.monotonic()
        final = _first(fake_slack, lambda c: c.method == "chat.update" and c.args.get("ts") == card_ts
                       and "stopped unexpectedly" in _text(c), 60)
        assert time.monotonic() - killed_at < 60
        for host in (pair.primary, pair.replica):
            lab.control(host, "latency", {"seconds": 0})
        shown = _text(final)
        assert "FAILED" in shown and "State now" in shown and pair.primary in shown and pair.replica in shown
        assert "✓ 1." in shown  # the card keeps what was done before the kill
        with Fleet(load_inventory(inventory)) as fleet:
            facts = gather(fleet, "fw01", pair)
        assert f"VM {facts.primary.vm_state}" in shown and f"VM {facts.replica.vm_state}" in shown  # the real state
        assert facts.replica.mode == "Replica"  # the kill landed mid-plan: the failover never completed
        wait_until(lambda: VmLock(redis_conn, "fw01").holder() is None, 10, "VM lock released")
        assert not redis_conn.hexists(RUNS_KEY, job_id[2:])
        assert len([c for c in fake_slack.calls_to("chat.update") if "stopped unexpectedly" in _text(c)]) == 1
    finally:
        server.stop()
        worker.stop()
