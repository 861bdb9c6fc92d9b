"""Shared by the end-to-end recovery tests (a site failover and its follow-ups through signed Slack requests, real
Redis, an in-process RQ worker and the lab): the chat world on a lab, and the small steps every test repeats.

``recovery_world(lab, tmp_path, fake_slack, redis_conn, monkeypatch)`` yields a dict: ``lab``, ``app`` (the Bolt
app), ``fake``, ``conn``, ``settings`` and ``queue``; OP is the operator, APP1 the approver, C0ONCALL the approval
channel."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue
from rq.serializers import JSONSerializer
from slack_bolt import App, BoltRequest

from bot.adapters.fake_slack import FakeSlack
from bot.app import build_app
from bot.cli.reporters import reporters_installed
from bot.runtime import build_runtime
from bot.settings import Settings
from jobs.hyperv import process_fleet
from lab.fleet import Lab
from tests.support.fixtures_redis import TEST_QUEUE
from tests.support.fixtures_slack import BOT_TOKEN, SIGNING_SECRET, signed_headers
from tests.support.workers import BurstWorker

OP, APP1 = "U0OP", "U0AP1"


def recovery_world(lab: Lab, tmp_path: Path, fake_slack: FakeSlack, redis_conn: redis.Redis,
                   monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("HVBOT_INVENTORY", str(lab.write_inventory(tmp_path / "inventory.yml")))
    monkeypatch.setenv("HVBOT_RECOVERY_HEARTBEAT_POLL_S", "0.2")
    process_fleet._fleet_cache.clear()
    settings = Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                        slack_api_url=fake_slack.api_url, queue=TEST_QUEUE, channel_post_interval_seconds=0,
                        operators=[OP], approvers=[APP1], approval_channel="C0ONCALL")
    runtime = build_runtime(settings, connection=redis_conn)
    with reporters_installed(runtime):
        yield {"lab": lab, "app": build_app(settings, runtime=runtime), "fake": fake_slack, "conn": redis_conn,
               "settings": settings, "queue": Queue(TEST_QUEUE, connection=redis_conn, serializer=JSONSerializer)}
    process_fleet._fleet_cache.clear()


def dispatch(app: App, body: str) -> None:
    """One signed request through the Bolt app; Slack would see a 200."""
    response = app.dispatch(BoltRequest(body=body, headers={k.lower(): [v] for k, v in signed_headers(body).items()}))
    assert response.status == 200, response.body


def work(world: dict[str, Any]) -> None:
    """Run every queued job (and the jobs they enqueue) in this process."""
    BurstWorker([world["queue"]], connection=world["conn"], serializer=JSONSerializer).work(burst=True)


def buttons(call: Any, action_id: str) -> list[str]:
    """The values of a posted or updated message's buttons whose action id starts with ``action_id``."""
    blocks = call.args.get("blocks")
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks or []
    return [e["value"] for b in blocks if b.get("type") == "actions" for e in b["elements"]
            if e.get("action_id", "").startswith(action_id)]
