"""`/hyperv drill` through the Bolt app on real Redis: schedules (who may make them run by themselves), bad input,
a drill without a second approval when test failovers need none, and `/hyperv replication` showing each VM's last
successful drill. The drills themselves run in test_drill_chat.py (real worker and lab)."""

from __future__ import annotations

import json
import time

from rq import Queue
from rq.serializers import JSONSerializer
from slack_bolt import App, BoltRequest

from bot.app import build_app
from bot.delivery.cards import approval_store
from bot.runtime import build_runtime
from bot.settings import Settings
from jobs.recovery.drill_store import DrillStore
from tests.integration.bot.test_failover_chat import _buttons
from tests.integration.bot.test_monitor_sweep import World, r, slack, world  # noqa: F401  # fixtures
from tests.support.fixtures_redis import wait_until
from tests.support.fixtures_slack import BOT_TOKEN, SIGNING_SECRET, action_body, signed_headers, slash_body
from tests.support.held_pool import HeldPool

QUEUE = "hvbot-drill-commands-test"
OP, APPROVER, VIEWER = "U100", "U300", "U200"


def _app(w: World, pool: HeldPool | None = None, **extra: object) -> App:
    settings = Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                        slack_api_url=w.slack.api_url, queue=QUEUE, channel_post_interval_seconds=0,
                        operators=[OP], approvers=[APPROVER], viewers=[VIEWER], **extra)
    return build_app(settings, runtime=build_runtime(settings, connection=w.r), listener_executor=pool)


def _dispatch(app: App, body: str) -> str:
    response = app.dispatch(BoltRequest(body=body, headers={k.lower(): [v] for k, v in signed_headers(body).items()}))
    assert response.status == 200
    return str(response.body)


def _say(app: App, text: str, user: str = OP) -> str:
    return str(json.loads(_dispatch(app, slash_body(text, user=user)))["text"])


def test_drill_schedules_from_chat(world):
    w = world(1, 1)
    app = _app(w)
    store = DrillStore(w.r)
    assert "operator" in _say(app, "drill dr-plan --every 30d", user=VIEWER)
    answer = _say(app, 'drill dr-plan --every 30d --at "Sun 03:00"')
    assert "scheduled every 30d at Sun 03:00 UTC; first due Sun" in answer
    assert "announced when due, for an operator to start" in answer
    [stored] = store.schedules()
    assert (stored.schedule.every_s, stored.schedule.at, stored.schedule.without_approval) == (30 * 86400, "Sun 03:00",
                                                                                               False)
    assert "runs without a further approval" in _say(app, "drill dr-plan --every 7d", user=APPROVER)
    assert store.schedules()[0].schedule.without_approval
    assert "between 1 hour and 366 days" in _say(app, "drill dr-plan --every 5m")
    assert "is not a drill time" in _say(app, 'drill dr-plan --every 7d --at "someday"')
    assert "is not a duration" in _say(app, "drill dr-plan --every soon")
    assert "`--at` needs `--every`" in _say(app, 'drill dr-plan --at "03:00"')
    assert "no * wildcards" in _say(app, "drill dr*")
    assert "stopped" in _say(app, "drill dr-plan --every off") and store.schedules() == []


def test_a_drill_starts_at_once_when_test_failovers_need_no_second_approval(world):
    w = world(1, 1)
    app = _app(w, test_failover_needs_approval=False)
    answer = _say(app, "drill vm-000-0000 --host hv-000")
    assert "Drill of vm-000-0000 started" in answer
    [job] = Queue(QUEUE, connection=w.r, serializer=JSONSerializer).jobs
    assert job.func_name.endswith("run_drill") and job.kwargs["host"] == "hv-000"
    assert job.kwargs["report_to"]["channel"] == "C100" and "reply" not in job.kwargs
    audit = [{k.decode(): v.decode() for k, v in f.items()} for _, f in w.r.xrevrange("hvbot:audit", count=5)]
    assert any(a["outcome"] == "accepted" and "no second approval" in a["detail"] for a in audit)


def test_replication_shows_each_vms_last_successful_drill(world):
    w = world(2, 2)
    app = _app(w)
    DrillStore(w.r).record_success("vm", "vm-000-0000", time.time(), {"drill_id": "d1"})
    w.sweep(0)
    answer = _say(app, "replication vm-000-000*", user=VIEWER)
    drilled = [line for line in answer.splitlines() if "`vm-000-0000`" in line]
    assert drilled and all(time.strftime("drilled %Y-%m-%d", time.gmtime()) in line for line in drilled)
    assert all("no successful drill" in line for line in answer.splitlines() if "`vm-000-0001`" in line)


def test_a_drill_card_slack_refuses_is_told_to_the_requester(world):
    """The card is posted after the ack (a 429 may make it wait past Slack's 3 s); when Slack refuses it, the
    requester hears so through the command's response_url instead of waiting for a card that never comes."""
    w = world(1, 1)
    app = _app(w)
    w.slack.fail_next("chat.postMessage", status=500)
    body = slash_body("drill dr-plan", user=OP, response_url=w.slack.response_url("drill-request"))
    assert "Drill of dr-plan requested" in json.loads(_dispatch(app, body))["text"]
    told = w.slack.wait_for(lambda calls: [c for c in calls if c.path.endswith("/drill-request")], 10)[0]
    assert "could not be posted" in told.args["text"] and "nothing was started" in told.args["text"]
    assert not [c for c in w.slack.calls_to("chat.postMessage") if c.status == 200]


def test_a_drill_approval_is_queued_before_the_ack_and_its_card_redrawn_after(world):
    """The decision and the drill job are in Redis when the click is answered; the card update, which may wait
    out a 429, runs after the ack (Bolt answers when the listener returns)."""
    w, pool = world(1, 1), HeldPool()
    app = _app(w, pool=pool)
    approval_id = _say(app, "drill dr-plan").split("(approval ", 1)[1].split(")", 1)[0]
    store = approval_store(app.runtime.settings, w.r)  # type: ignore[attr-defined]
    wait_until(lambda: store.get(approval_id).message_ts, 10, "the card posted after the ack and its ts stored")
    card = w.slack.wait_for(lambda calls: [c for c in calls if c.method == "chat.postMessage"
                                           and "hvbot_drill_approve" in json.dumps(c.args)], 10)[0]
    [value] = _buttons(card, "hvbot_drill_approve")
    pool.hold()
    _dispatch(app, action_body("hvbot_drill_approve", value, user=APPROVER, channel=card.args["channel"],
                               message_ts=card.response["ts"], response_url=w.slack.response_url("approve")))
    [job] = Queue(QUEUE, connection=w.r, serializer=JSONSerializer).jobs
    assert job.func_name.endswith("run_drill")
    assert w.slack.calls_to("chat.update") == [] and pool.held() == 1
    w.slack.fail_next("chat.update", status=429, retry_after=1)
    pool.release()
    updates = w.slack.calls_to("chat.update")
    # this world's fake Slack also answers 429 to a second write in a channel within 0.9 s: one 429 or more
    assert [c.status for c in updates][-1] == 200 and {c.status for c in updates[:-1]} == {429}
    assert "approved by <@U300>; running" in json.dumps(updates[-1].args)
    pool.shutdown()
