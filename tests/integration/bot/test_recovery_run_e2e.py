"""End to end through signed Slack requests, real Redis, an in-process RQ worker and the lab: site A loses power,
`/hyperv failover --site site-a unplanned` is previewed, requested, approved by a second person, re-checked and run;
every VM runs on site B, each group starts after the previous group's heartbeats, and the approval card becomes the
live table and then the summary with the follow-up buttons."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from itertools import pairwise
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
from bot.delivery.cards import approval_store
from bot.runtime import build_runtime
from bot.settings import Settings
from jobs.hyperv import process_fleet
from lab.fleet import Lab
from tests.support.fixtures_redis import TEST_QUEUE
from tests.support.fixtures_slack import BOT_TOKEN, SIGNING_SECRET, action_body, signed_headers, slash_body
from tests.support.workers import BurstWorker

OP, APP1 = "U0OP", "U0AP1"


@pytest.fixture
def chat(make_lab: Callable[..., Lab], tmp_path: Path, fake_slack: FakeSlack, redis_conn: redis.Redis,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    lab = make_lab()
    monkeypatch.setenv("HVBOT_INVENTORY", str(lab.write_inventory(tmp_path / "inventory.yml")))
    monkeypatch.setenv("HVBOT_RECOVERY_HEARTBEAT_POLL_S", "0.2")
    process_fleet._fleet_cache.clear()
    settings = Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET, slack_api_url=fake_slack.api_url,
                        queue=TEST_QUEUE, channel_post_interval_seconds=0, operators=[OP], approvers=[APP1],
                        approval_channel="C0ONCALL")
    runtime = build_runtime(settings, connection=redis_conn)
    with reporters_installed(runtime):
        yield {"lab": lab, "app": build_app(settings, runtime=runtime), "fake": fake_slack, "conn": redis_conn,
               "settings": settings, "queue": Queue(TEST_QUEUE, connection=redis_conn, serializer=JSONSerializer)}
    process_fleet._fleet_cache.clear()


def _dispatch(app: App, body: str) -> None:
    response = app.dispatch(BoltRequest(body=body, headers={k.lower(): [v] for k, v in signed_headers(body).items()}))
    assert response.status == 200, response.body


def _work(c: dict[str, Any]) -> None:
    BurstWorker([c["queue"]], connection=c["conn"], serializer=JSONSerializer).work(burst=True)


def _buttons(call: Any, action_id: str) -> list[str]:
    blocks = call.args.get("blocks")
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks or []
    return [e["value"] for b in blocks if b.get("type") == "actions" for e in b["elements"]
            if e.get("action_id", "").startswith(action_id)]


def _named(entry: Any) -> set[str]:
    return {str(v) for k, value in entry.parameters if k in ("VMName", "Name")
            for v in (value if isinstance(value, list) else [value])}


def test_site_a_power_loss_approved_once_runs_every_vm_on_site_b_in_plan_order(chat: dict[str, Any]) -> None:
    c, lab, fake = chat, chat["lab"], chat["fake"]
    for host in ("hv-a1", "hv-a2"):
        lab.control(host, "power_loss", {})
    _dispatch(c["app"], slash_body("failover --site site-a unplanned", user=OP))
    _work(c)
    preview = next(p for p in fake.calls_to("chat.postMessage") if _buttons(p, "hvbot_rc_request"))
    _dispatch(c["app"], action_body("hvbot_rc_request", _buttons(preview, "hvbot_rc_request")[0], user=OP,
                                    message_ts="7.7", response_url=fake.response_url("req")))
    card = fake.wait_for(lambda calls: next((x for x in calls if _buttons(x, "hvbot_rc_approve")), None), 15)
    approve = _buttons(card, "hvbot_rc_approve")[0]
    _dispatch(c["app"], action_body("hvbot_rc_approve", approve, user=APP1, channel="C0ONCALL", message_ts="9.9",
                                    response_url=fake.response_url("approve")))
    _work(c)  # the re-check, then the run it enqueues
    ts = card.response["ts"]
    updates = [x for x in fake.calls_to("chat.update") if x.args.get("ts") == ts]
    final = json.dumps(updates[-1].args, ensure_ascii=False)
    assert "finished" in final and "Recovery time" in final, final[:2000]
    assert any("running" in json.dumps(u.args) and "·" in json.dumps(u.args, ensure_ascii=False) for u in updates)
    assert "failover --site site-a complete" in _buttons(updates[-1], "hvbot_recovery_command")
    run = json.loads(c["conn"].hget(f"hvbot:recovery:run:{approve.split('.')[0]}", "meta"))
    groups = [[m["vm"] for m in g["vms"]] for g in run["plan"]["groups"]]
    assert run["summary"]["failed"] == 0 and run["summary"]["done"] == sum(map(len, groups))
    for g in run["plan"]["groups"]:
        for m in g["vms"]:
            assert str(lab.fleet.vm(m["replica_host"], m["vm"]).state) == "Running", m
    log = lab.command_log()
    for earlier, later in pairwise(groups):
        boots = [i for i, e in enumerate(log) if e.cmdlet == "Start-VM" and _named(e) & set(earlier)]
        beats = [i for i, e in enumerate(log) if e.cmdlet == "Get-VM" and _named(e) & set(earlier)
                 and not any("*" in n for n in _named(e))]
        starts = [i for i, e in enumerate(log) if e.cmdlet == "Start-VMFailover" and _named(e) & set(later)]
        assert max(boots) < max(beats) < min(starts)  # the next group began after this group's heartbeats
    approval = approval_store(c["settings"], c["conn"]).get(approve.split(".")[0])
    assert approval is not None and approval.outcome == "succeeded"
    # "Complete all" on the summary: the command goes through the grammar and opens its own preview (and approval)
    previews = len([p for p in fake.calls_to("chat.postMessage") if _buttons(p, "hvbot_rc_request")])
    complete = next(v for v in _buttons(updates[-1], "hvbot_recovery_command") if v.endswith("complete"))
    _dispatch(c["app"], action_body("hvbot_recovery_command_complete", complete, user=OP, message_ts=ts,
                                    channel="C0ONCALL", response_url=fake.response_url("complete")))
    fake.wait_for(lambda calls: [x for x in calls if x.path.endswith("/complete")], 15)
    _work(c)
    fresh = [p for p in fake.calls_to("chat.postMessage") if _buttons(p, "hvbot_rc_request")][previews:]
    shown = json.dumps(fresh[0].args, ensure_ascii=False) if fresh else ""
    assert len(fresh) == 1 and "omplete" in shown, [x.args for x in fake.calls[-3:]]
    assert f"{sum(map(len, groups))} ready" in shown, shown[:1500]
