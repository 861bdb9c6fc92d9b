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

from bot.adapters.fake_slack import FakeSlack
from bot.delivery.cards import approval_store
from lab.fleet import Lab
from tests.support.fixtures_slack import action_body, slash_body
from tests.support.recovery_e2e import APP1, OP, buttons as _buttons, dispatch as _dispatch, recovery_world
from tests.support.recovery_e2e import work as _work


@pytest.fixture
def chat(make_lab: Callable[..., Lab], tmp_path: Path, fake_slack: FakeSlack, redis_conn: redis.Redis,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    yield from recovery_world(make_lab(), tmp_path, fake_slack, redis_conn, monkeypatch)


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
