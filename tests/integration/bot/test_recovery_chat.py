"""Site failover before it runs, through the Bolt app (signed requests), real Redis, an in-process RQ worker and the
lab over PSRP: site A loses power, the preview lists every replicated VM of site A with its data loss and
recommends unplanned; who may request and approve; a plan that moved is re-previewed, never run; and 50 concurrent
Approve clicks lead to exactly one execution (each VM failed over once in the lab's command log), in 20 of 20
trials."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
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
from jobs.failover.tasks import expire_approvals
from jobs.hyperv import process_fleet
from jobs.hyperv.commands import command, pipeline
from jobs.hyperv.fleet import Fleet
from jobs.hyperv.hosts import load_inventory
from lab.fleet import Lab
from lab.fleet_file import fleet_from_dict
from tests.support.fixtures_redis import TEST_QUEUE
from tests.support.fixtures_slack import BOT_TOKEN, SIGNING_SECRET, action_body, signed_headers, slash_body
from tests.support.held_pool import HeldPool, drawn_after_the_ack
from tests.support.workers import BurstWorker

OP, APP1, APP2, VIEWER = "U0OP", "U0AP1", "U0AP2", "U0VIEW"
SITE_A = ("hv-a1", "hv-a2")
RUN = "jobs.recovery.tasks.run_recovery"
SMALL_VMS = ("app01", "app02")


def _chat(lab: Lab, tmp_path: Path, fake_slack: FakeSlack, redis_conn: redis.Redis,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    inv = lab.write_inventory(tmp_path / "inventory.yml")
    monkeypatch.setenv("HVBOT_INVENTORY", str(inv))
    process_fleet._fleet_cache.clear()
    settings = Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET, slack_api_url=fake_slack.api_url,
                        queue=TEST_QUEUE, channel_post_interval_seconds=0, operators=[OP], approvers=[APP1, APP2],
                        viewers=[VIEWER], approval_channel="C0ONCALL")
    runtime = build_runtime(settings, connection=redis_conn)
    app = build_app(settings, runtime=runtime)
    with reporters_installed(runtime), Fleet(load_inventory(inv)) as fleet:
        yield {"lab": lab, "app": app, "runtime": runtime, "fake": fake_slack, "conn": redis_conn, "fleet": fleet,
               "settings": settings, "queue": Queue(TEST_QUEUE, connection=redis_conn, serializer=JSONSerializer)}
    process_fleet._fleet_cache.clear()


@pytest.fixture
def chat(make_lab: Callable[..., Lab], tmp_path: Path, fake_slack: FakeSlack, redis_conn: redis.Redis,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    yield from _chat(make_lab(), tmp_path, fake_slack, redis_conn, monkeypatch)


def _small_site() -> Any:
    """Site A is one host with two VMs replicated to site B: each trial's execution is cheap to run and undo."""
    vms = [{"name": name, "state": "Running", "replica": {"to": "hv-b1"}} for name in SMALL_VMS]
    return fleet_from_dict({"hosts": [{"name": "hv-a1", "site": "site-a", "vms": vms},
                                      {"name": "hv-b1", "site": "site-b", "vms": []}]})


@pytest.fixture
def small_chat(make_lab: Callable[..., Lab], tmp_path: Path, fake_slack: FakeSlack, redis_conn: redis.Redis,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("HVBOT_RECOVERY_HEARTBEAT_POLL_S", "0.2")
    yield from _chat(make_lab(fleet=_small_site()), tmp_path, fake_slack, redis_conn, monkeypatch)


def _dispatch(app: App, body: str) -> dict[str, Any]:
    response = app.dispatch(BoltRequest(body=body, headers={k.lower(): [v] for k, v in signed_headers(body).items()}))
    assert response.status == 200, response.body
    return json.loads(response.body) if response.body else {}


def _work(c: dict[str, Any], max_jobs: int | None = None) -> None:
    BurstWorker([c["queue"]], connection=c["conn"], serializer=JSONSerializer).work(burst=True, max_jobs=max_jobs)


def _blocks(call: Any) -> list[dict[str, Any]]:
    blocks = call.args.get("blocks")
    return json.loads(blocks) if isinstance(blocks, str) else blocks or []


def _buttons(call: Any, action_id: str) -> list[str]:
    return [e["value"] for b in _blocks(call) if b.get("type") == "actions" for e in b["elements"]
            if e.get("action_id") == action_id]


def _preview(c: dict[str, Any], text: str, user: str = OP) -> tuple[Any, list[Any]]:
    """Slash command → preview job; returns the preview message and its thread posts."""
    before = len(c["fake"].calls_to("chat.postMessage"))
    _dispatch(c["app"], slash_body(text, user=user))
    _work(c)
    posts = c["fake"].calls_to("chat.postMessage")[before:]
    message = next(p for p in posts if _buttons(p, "hvbot_rc_request"))
    thread = [p for p in posts if p.args.get("thread_ts")]
    return message, thread


def _request(c: dict[str, Any], preview_value: str, user: str = OP) -> str:
    """The Request click; returns the Approve button value of the approval card."""
    fake = c["fake"]
    cards_before, start = len(fake.calls_to("chat.postMessage")), len(fake.calls)
    _dispatch(c["app"], action_body("hvbot_rc_request", preview_value, user=user, message_ts="7.7",
                                    response_url=fake.response_url("req")))
    fake.wait_for(lambda calls: len([x for x in calls if x.method == "chat.postMessage"]) > cards_before, 15)
    fake.wait_for(lambda calls: any(x.method == "response_url" and "Requested (approval" in json.dumps(x.args)
                                    for x in calls[start:]), 15)
    card = [x for x in fake.calls_to("chat.postMessage") if _buttons(x, "hvbot_rc_approve")][-1]
    assert card.args["channel"] == "C0ONCALL"
    return _buttons(card, "hvbot_rc_approve")[0]


def _approve(c: dict[str, Any], value: str, user: str = APP1) -> dict[str, Any]:
    return _dispatch(c["app"], action_body("hvbot_rc_approve", value, user=user, channel="C0ONCALL",
                                           message_ts="9.9", response_url=c["fake"].response_url("approve")))


def _refusals(c: dict[str, Any]) -> list[str]:
    return [e.detail for e in c["runtime"].audit.recent(100) if e.outcome == "refused"]


def _runs(c: dict[str, Any]) -> list[Any]:
    return [j for j in c["queue"].get_jobs() if j.func_name == RUN]


def _site_a_vms(lab: Lab) -> set[str]:
    return {vm.name for h in SITE_A for vm in lab.fleet.hosts[h].vms
            if vm.replication is not None and vm.replication.mode == "Primary"}


def test_site_a_power_loss_preview_and_who_may_request_and_approve(chat: dict[str, Any]) -> None:
    c, lab = chat, chat["lab"]
    expected = _site_a_vms(lab)
    for host in SITE_A:
        lab.control(host, "power_loss", {})
    answer = _dispatch(c["app"], slash_body("failover --site site-a unplanned", user=VIEWER))
    assert "operator" in json.dumps(answer) and len(c["queue"]) == 0  # a viewer cannot even preview
    message, thread = _preview(c, "failover --site site-a unplanned")
    shown = json.dumps(_blocks(message), ensure_ascii=False)
    assert f"{len(expected)} VMs" in shown and f"{len(expected)} ready" in shown
    assert "Recommended: unplanned" in shown and "hv-a1" in shown and "Data that would be lost: up to" in shown
    details = "\n".join(str(p.args.get("text", "")) + json.dumps(_blocks(p), ensure_ascii=False) for p in thread)
    assert thread and len({p.args["thread_ts"] for p in thread}) == 1  # one thread, under the one message
    for vm in expected:
        assert f"`{vm}` → " in details and ", loses " in details, vm
    value = _buttons(message, "hvbot_rc_request")[0]
    _dispatch(c["app"], action_body("hvbot_rc_request", value, user=VIEWER, message_ts="7.7",
                                    response_url=c["fake"].response_url("v")))
    assert not [x for x in c["fake"].calls_to("chat.postMessage") if _buttons(x, "hvbot_rc_approve")]
    approve = _request(c, value)
    cards = len([x for x in c["fake"].calls_to("chat.postMessage") if _buttons(x, "hvbot_rc_approve")])
    start = len(c["fake"].calls)
    _dispatch(c["app"], action_body("hvbot_rc_request", value, user=OP, message_ts="7.7",
                                    response_url=c["fake"].response_url("again")))  # a double click
    c["fake"].wait_for(lambda calls: any("already used" in json.dumps(x.args) for x in calls[start:]), 15)
    assert len([x for x in c["fake"].calls_to("chat.postMessage") if _buttons(x, "hvbot_rc_approve")]) == cards
    _approve(c, approve, user=OP)  # self-approval
    _approve(c, approve, user=VIEWER)  # not an approver
    _approve(c, approve.split(".")[0] + ".deadbeef")  # tampered
    refused = " ".join(_refusals(c))
    assert "self_approval" in refused and "not_approver" in refused and "tampered" in refused
    assert c["runtime"].audit.recent(100) and len(c["queue"]) == 0  # nothing started
    _approve(c, approve, user=APP2)
    _work(c, max_jobs=1)  # the re-check: unchanged, so it enqueues the execution
    runs = _runs(c)
    assert len(runs) == 1 and runs[0].kwargs["kind"] == "unplanned" and runs[0].kwargs["card"]["channel"] == "C0ONCALL"
    assert {m["vm"] for g in runs[0].kwargs["plan"]["groups"] for m in g["vms"]} == expected


def test_a_plan_that_moved_after_request_is_re_previewed_not_run(chat: dict[str, Any]) -> None:
    c, fleet = chat, chat["fleet"]
    message, _ = _preview(c, "failover --host hv-a1 unplanned")
    approve = _request(c, _buttons(message, "hvbot_rc_request")[0])
    fleet.run("hv-b1", pipeline(command("Start-VMFailover", VMName=["fw01"])))  # someone failed fw01 over meanwhile
    previews_before = len([x for x in c["fake"].calls_to("chat.postMessage") if _buttons(x, "hvbot_rc_request")])
    _approve(c, approve, user=APP1)
    _work(c, max_jobs=1)
    assert _runs(c) == []
    approval = approval_store(c["settings"], c["conn"]).get(approve.split(".")[0])
    assert approval is not None and approval.status == "finished" and approval.outcome == "changed"
    card = json.dumps(c["fake"].calls_to("chat.update")[-1].args, ensure_ascii=False)
    assert "Not run: the plan changed before it ran (fw01)" in card
    fresh = [x for x in c["fake"].calls_to("chat.postMessage") if _buttons(x, "hvbot_rc_request")]
    assert len(fresh) == previews_before + 1  # the fresh preview to request again
    _approve(c, approve, user=APP2)  # the old card's button decides nothing any more
    assert "already decided" in " ".join(_refusals(c))


def test_expiry_is_the_single_vm_one(chat: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    c = chat
    for name, value in (("SLACK_API_URL", c["fake"].api_url), ("SLACK_BOT_TOKEN", BOT_TOKEN),
                        ("SLACK_SIGNING_SECRET", SIGNING_SECRET)):  # the chore reads settings like `hvbot monitor`
        monkeypatch.setenv(name, value)
    message, _ = _preview(c, "failover --site site-a planned")
    value = _request(c, _buttons(message, "hvbot_rc_request")[0])
    approval = approval_store(c["settings"], c["conn"]).get(value.split(".")[0])
    assert approval is not None and approval.expires_at - approval.created_at == c["settings"].approval_ttl_seconds
    later = datetime.fromtimestamp(approval.expires_at + 1, UTC)
    assert expire_approvals(c["conn"], later, steps=c["runtime"].card_reporter()) == 1
    _approve(c, value)
    assert any("expired" in d for d in _refusals(c)) and len(c["queue"]) == 0
    card = json.dumps(c["fake"].calls_to("chat.update")[-1].args, ensure_ascii=False)
    assert "Expired" in card and "planned failover of site site-a" in card


def _failovers(lab: Lab, since: int) -> list[str]:
    """The VM named by each Start-VMFailover the lab received since log entry ``since``, in order."""
    return [str(v) for e in lab.command_log()[since:] if e.cmdlet == "Start-VMFailover"
            for _, val in e.parameters for v in (val if isinstance(val, list) else [val]) if str(v) in SMALL_VMS]


def _undo_failover(lab: Lab) -> None:
    """Back to before the trial through the lab's controls (not Hyper-V): replicas off and replicating again."""
    for vm in SMALL_VMS:
        lab.control("hv-b1", "vm_state", {"vm": vm, "state": "Off"})
        lab.control("hv-b1", "replication", {"vm": vm, "state": "Replicating", "health": "Normal"})


@pytest.mark.timeout(400)  # 20 executions on a loaded machine; a hung trial still fails, never hangs the run
def test_fifty_concurrent_approvals_execute_once(small_chat: dict[str, Any]) -> None:
    c, lab = small_chat, small_chat["lab"]
    lab.control("hv-a1", "power_loss", {})
    for trial in range(20):
        message, _ = _preview(c, "failover --site site-a unplanned")
        value = _request(c, _buttons(message, "hvbot_rc_request")[0])
        users = [APP1, APP2] * 25  # duplicates: the same payload delivered again
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(lambda u: _approve(c, value, user=u), users))
        assert len(answers) == 50
        assert [j.func_name for j in c["queue"].get_jobs()] == ["jobs.recovery.preview_tasks.run_recovery_recheck"]
        _work(c, max_jobs=1)
        runs = _runs(c)
        assert len(runs) == 1 and runs[0].kwargs["approval_id"] == value.split(".")[0], f"trial {trial}"
        mark = len(lab.command_log())
        _work(c)  # the execution itself, and anything else the clicks queued
        assert sorted(_failovers(lab, mark)) == sorted(SMALL_VMS), f"trial {trial}: each VM failed over once"
        for vm in SMALL_VMS:
            assert str(lab.fleet.vm("hv-b1", vm).state) == "Running", f"trial {trial}: {vm}"
        assert len(c["queue"]) == 0
        _undo_failover(lab)


def test_an_approval_whose_card_slack_cannot_update_still_queues_its_run(small_chat: dict[str, Any]) -> None:
    """Slack refusing the "approved; checking the plan" card update must not leave the approval claimed with no
    job behind it: the re-check is queued and enqueues the run."""
    c, lab = small_chat, small_chat["lab"]
    lab.control("hv-a1", "power_loss", {})
    message, _ = _preview(c, "failover --site site-a unplanned")
    approve = _request(c, _buttons(message, "hvbot_rc_request")[0])
    c["fake"].fail_next("chat.update", status=500)
    _approve(c, approve, user=APP2)
    assert [x for x in c["fake"].calls_to("chat.update") if x.status == 500]
    _work(c, max_jobs=1)  # the re-check
    assert len(_runs(c)) == 1


def _dark_site_a_approve_value(c: dict[str, Any]) -> str:
    c["lab"].control("hv-a1", "power_loss", {})
    message, _ = _preview(c, "failover --site site-a unplanned")
    return _request(c, _buttons(message, "hvbot_rc_request")[0])


def test_an_approve_click_is_acked_without_waiting_out_a_429_on_its_card(small_chat: dict[str, Any]) -> None:
    """Bolt answers a click when its listener returns, and the "approved" card update runs before the re-check
    is queued: one try, no Retry-After wait, so the ack is not held past Slack's 3 s."""
    c = small_chat
    approve = _dark_site_a_approve_value(c)
    before = len(c["fake"].calls_to("chat.update"))
    c["fake"].fail_next("chat.update", status=429, retry_after=60)
    _approve(c, approve, user=APP2)
    assert [x.status for x in c["fake"].calls_to("chat.update")[before:]] == [429]
    _work(c, max_jobs=1)  # the re-check
    assert len(_runs(c)) == 1


def test_a_reject_click_redraws_its_card_after_the_ack(small_chat: dict[str, Any]) -> None:
    """The rejected card is drawn after the ack, so it may wait out a 429 (and does) without holding the ack."""
    c, pool = small_chat, HeldPool()
    reject = _dark_site_a_approve_value(c)  # Approve and Reject carry the same value
    app = build_app(c["settings"], runtime=c["runtime"], listener_executor=pool)
    updates = drawn_after_the_ack(c["fake"], pool, lambda: _dispatch(app, action_body(
        "hvbot_rc_reject", reject, user=APP1, channel="C0ONCALL", message_ts="9.9",
        response_url=c["fake"].response_url("reject"))))
    assert [x.status for x in updates] == [429, 200] and "Rejected by <@U0AP1>" in json.dumps(updates[-1].args)
    _work(c)
    assert _runs(c) == [] and len(c["queue"]) == 0
    pool.shutdown()
