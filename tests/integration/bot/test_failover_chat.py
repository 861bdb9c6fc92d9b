"""Failover through the Bolt app (signed requests), real Redis, an in-process RQ worker and the lab over PSRP:
the seed story, exactly-once approval under 50 concurrent clicks, refusals (audited), expiry, a killed run."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from slack_bolt import App, BoltRequest

from bot.adapters.fake_slack import FakeSlack
from bot.app import build_app
from bot.delivery.cards import approval_store
from bot.runtime import build_runtime
from bot.settings import Settings
from jobs import ports as reporting
from jobs.failover.gather import gather, locate
from jobs.failover.tasks import expire_approvals, sweep_dead_failovers
from jobs.hyperv import process_fleet
from jobs.hyperv.fleet import Fleet
from jobs.hyperv.hosts import load_inventory
from jobs.keys import FAILOVER_RUNS_KEY as RUNS_KEY
from jobs.locks import VmLock
from lab.fleet import Lab
from tests.support.fixtures_redis import TEST_QUEUE
from tests.support.fixtures_slack import BOT_TOKEN, SIGNING_SECRET, action_body, signed_headers, slash_body
from tests.support.held_pool import HeldPool, drawn_after_the_ack
from tests.support.workers import work_dry

OP, APP1, APP2, VIEWER = "U0OP", "U0AP1", "U0AP2", "U0VIEW"


@pytest.fixture
def chat(make_lab: Callable[..., Lab], tmp_path: Path, fake_slack: FakeSlack, redis_conn: redis.Redis,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    lab = make_lab()
    inv = lab.write_inventory(tmp_path / "inventory.yml")
    monkeypatch.setenv("HVBOT_INVENTORY", str(inv))
    process_fleet._fleet_cache.clear()
    settings = Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET, slack_api_url=fake_slack.api_url,
                        queue=TEST_QUEUE, channel_post_interval_seconds=0, operators=[OP], approvers=[APP1, APP2],
                        viewers=[VIEWER], approval_channel="C0ONCALL")
    runtime = build_runtime(settings, connection=redis_conn)
    app = build_app(settings, runtime=runtime)
    reporting.install_steps(runtime.card_reporter())
    with Fleet(load_inventory(inv)) as fleet:
        yield {"lab": lab, "app": app, "runtime": runtime, "fake": fake_slack, "conn": redis_conn, "fleet": fleet,
               "settings": settings}
    reporting.install_steps(reporting.NoStepReporter())
    process_fleet._fleet_cache.clear()


def _dispatch(app: App, body: str) -> dict[str, Any]:
    response = app.dispatch(BoltRequest(body=body, headers={k.lower(): [v] for k, v in signed_headers(body).items()}))
    assert response.status == 200, response.body
    return json.loads(response.body) if response.body else {}


def _work(c: dict[str, Any]) -> None:
    work_dry(c["settings"].queue, c["conn"])


def _buttons(call: Any, action_id: str) -> list[str]:
    blocks = call.args.get("blocks")
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks or []
    return [e["value"] for b in blocks if b.get("type") == "actions" for e in b["elements"]
            if e.get("action_id") == action_id]


def _request(c: dict[str, Any], text: str) -> str:
    """Slash command → preview (worker) → Request click; returns the Approve button value of the card."""
    fake = c["fake"]
    _dispatch(c["app"], slash_body(text, user=OP))
    _work(c)
    previews = fake.calls_to("chat.postEphemeral")
    value = _buttons(previews[-1], "hvbot_fo_request")[0]
    cards_before, start = len(fake.calls_to("chat.postMessage")), len(fake.calls)
    _dispatch(c["app"], action_body("hvbot_fo_request", value, user=OP, response_url=c["fake"].response_url("req")))
    fake.wait_for(lambda calls: len([x for x in calls if x.method == "chat.postMessage"]) > cards_before, 15)
    # the card's ts is stored right after it is posted, then the requester is told: wait for that answer
    fake.wait_for(lambda calls: any(x.method == "response_url" and "Requested (approval" in json.dumps(x.args)
                                    for x in calls[start:]), 15)
    card = [x for x in fake.calls_to("chat.postMessage") if _buttons(x, "hvbot_fo_approve")][-1]
    return _buttons(card, "hvbot_fo_approve")[0]


def _approve(c: dict[str, Any], value: str, user: str = APP1) -> dict[str, Any]:
    return _dispatch(c["app"], action_body("hvbot_fo_approve", value, user=user, channel="C0ONCALL",
                                           message_ts="9.9", response_url=c["fake"].response_url("approve")))


def _refusals(c: dict[str, Any]) -> list[str]:
    return [e.detail for e in c["runtime"].audit.recent(100) if e.outcome == "refused"]


def test_seed_story_through_chat(chat: dict[str, Any]) -> None:
    c, lab, fleet = chat, chat["lab"], chat["fleet"]
    pair = locate(fleet, "fw01")
    lab.control(pair.primary, "power_loss", {})
    lab.control(pair.primary, "recover", {"broken": ["fw01"]})
    value = _request(c, "failover fw01 unplanned")
    preview = json.dumps(c["fake"].calls_to("chat.postEphemeral")[-1].args)
    assert "Start-VMFailover" in preview and "Recommended: unplanned" in preview
    _approve(c, value, user=OP)  # self-approval
    _approve(c, value, user=VIEWER)  # not an approver
    _approve(c, value.split(".")[0] + ".deadbeef")  # tampered
    refused = " ".join(_refusals(c))
    assert "self_approval" in refused and "not_approver" in refused and "tampered" in refused
    _approve(c, value)
    _work(c)
    facts = gather(fleet, "fw01", pair)
    assert facts.replica.vm_state == "Running" and facts.replica.state == "FailedOverWaitingCompletion"
    assert facts.primary.mode == "Primary" and facts.primary.vm_state == "Running"  # primary untouched
    assert [e.cmdlet for e in lab.command_log(pair.primary) if e.cmdlet.startswith(("Start-", "Stop-", "Set-"))] == []
    updates = json.dumps([x.args for x in c["fake"].calls_to("chat.update")], ensure_ascii=False)
    assert "done" in updates and "✓" in updates
    # site back: reverse replication, with its own preview and approval
    _approve(c, _request(c, "reverse fw01"), user=APP2)
    _work(c)
    after = gather(fleet, "fw01", pair)
    assert after.replica.mode == "Primary" and after.primary.mode == "Replica"
    assert after.replica.state in ("InitialReplicationInProgress", "Replicating")
    assert VmLock(c["conn"], "fw01").holder() is None


def test_fifty_concurrent_approvals_run_one_failover(chat: dict[str, Any]) -> None:
    c, lab, fleet = chat, chat["lab"], chat["fleet"]
    for trial in range(20):
        value = _request(c, "failover fw01 test")
        before = len([e for e in lab.command_log() if e.cmdlet == "Start-VMFailover"])
        users = [APP1, APP2] * 25  # duplicates: the same payload delivered again
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(lambda u: _approve(c, value, user=u), users))
        assert len(answers) == 50
        _work(c)
        started = [e for e in lab.command_log() if e.cmdlet == "Start-VMFailover"]
        assert len(started) - before == 1, f"trial {trial}"
        _approve(c, _request(c, "failover fw01 cancel"))  # clean up the test VM for the next trial
        _work(c)
        assert not gather(fleet, "fw01", locate(fleet, "fw01")).replica.test_vm_present


def test_expired_request_is_refused_and_audited(chat: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    c = chat
    for name, value in (("SLACK_API_URL", c["fake"].api_url), ("SLACK_BOT_TOKEN", BOT_TOKEN),
                        ("SLACK_SIGNING_SECRET", SIGNING_SECRET)):  # the chore reads settings like `hvbot monitor`
        monkeypatch.setenv(name, value)
    value = _request(c, "failover fw01 planned")
    store = approval_store(c["settings"], c["conn"])
    approval_id = value.split(".")[0]
    later = datetime.fromtimestamp(store.get(approval_id).expires_at + 1, UTC)  # type: ignore[union-attr]
    assert expire_approvals(c["conn"], later) == 1
    _approve(c, value)
    assert any("expired" in d for d in _refusals(c))
    assert [e for e in c["lab"].command_log() if e.cmdlet == "Start-VMFailover"] == []
    assert "Expired" in json.dumps(c["fake"].calls_to("chat.update")[-1].args)


def test_dead_run_reported_with_real_state_and_lock_freed(chat: dict[str, Any]) -> None:
    """What the chore does when a worker was SIGKILLed mid-run: its heartbeat is gone, its lock still held."""
    c = chat
    pair = locate(c["fleet"], "fw01")
    lock = VmLock(c["conn"], "fw01", ttl_ms=60_000)
    assert lock.acquire("deadrun")
    card = {"approval_id": "deadrun", "channel": "C0ONCALL", "ts": "5.5", "kind": "planned", "vm": "fw01"}
    c["conn"].hset(RUNS_KEY, "deadrun", json.dumps({"job_id": "fodeadrun", "vm": "fw01", "primary": pair.primary,
                                                  "replica": pair.replica, "card": card, "started": 0}))
    assert sweep_dead_failovers(c["conn"], datetime.now(UTC)) == 1
    assert VmLock(c["conn"], "fw01").holder() is None
    update = json.dumps(c["fake"].calls_to("chat.update")[-1].args)
    assert "FAILED" in update and "stopped unexpectedly" in update and pair.replica in update


def test_an_approval_whose_card_slack_cannot_update_still_runs_its_failover(chat: dict[str, Any]) -> None:
    """Slack refusing the "approved, running" card update must not leave the approval claimed with no job behind
    it: the failover is queued and run, and its worker redraws the card."""
    c = chat
    value = _request(c, "failover fw01 test")
    c["fake"].fail_next("chat.update", status=500)
    _approve(c, value)
    _work(c)
    assert [e for e in c["lab"].command_log() if e.cmdlet == "Start-VMFailover"]  # the test failover ran
    assert [x for x in c["fake"].calls_to("chat.update") if x.status == 500]  # the refused update happened
    assert "done" in json.dumps(c["fake"].calls_to("chat.update")[-1].args)  # the worker's card


def test_an_approve_click_is_acked_without_waiting_out_a_429_on_its_card(chat: dict[str, Any]) -> None:
    """Bolt answers a click when its listener returns, and the "approved, running" update runs before the job is
    queued: waiting out a 429's Retry-After there would hold the ack past Slack's 3 s. One try, then the run."""
    c = chat
    value = _request(c, "failover fw01 test")
    before = len(c["fake"].calls_to("chat.update"))
    c["fake"].fail_next("chat.update", status=429, retry_after=60)
    _approve(c, value)
    assert [x.status for x in c["fake"].calls_to("chat.update")[before:]] == [429]  # no retry before the ack
    _work(c)
    assert [e.cmdlet for e in c["lab"].command_log() if e.cmdlet == "Start-VMFailover"] == ["Start-VMFailover"]
    assert "done" in json.dumps(c["fake"].calls_to("chat.update")[-1].args)  # the worker's card


def test_a_reject_click_redraws_its_card_after_the_ack(chat: dict[str, Any]) -> None:
    """The rejected card is drawn after the ack, so it may wait out a 429 (and does) without holding the ack."""
    c, pool = chat, HeldPool()
    value = _request(c, "failover fw01 test")
    app = build_app(c["settings"], runtime=c["runtime"], listener_executor=pool)
    updates = drawn_after_the_ack(c["fake"], pool, lambda: _dispatch(app, action_body(
        "hvbot_fo_reject", value, user=APP1, channel="C0ONCALL", message_ts="9.9",
        response_url=c["fake"].response_url("reject"))))
    assert [x.status for x in updates] == [429, 200] and "Rejected by <@U0AP1>" in json.dumps(updates[-1].args)
    _work(c)
    assert [e for e in c["lab"].command_log() if e.cmdlet == "Start-VMFailover"] == []
    pool.shutdown()
