"""The replica monitor from chat, through the Bolt app on real Redis: `/hyperv silence`, `/hyperv replication`
(with its age, and --fresh queueing sweeps), and the alert's Ack / Snooze buttons; sweeps run as in
test_monitor_sweep (real jobs, lab over HTTP, fake Slack)."""

from __future__ import annotations

import json
from typing import Any

from rq import Queue
from rq.serializers import JSONSerializer
from slack_bolt import App, BoltRequest

from bot.app import build_app
from bot.runtime import build_runtime
from bot.settings import Settings
from bot.views import alerts as alert_views
from bot.views.tokens import plain
from tests.integration.bot.test_monitor_sweep import World, _text, r, slack, world  # noqa: F401  # fixtures
from tests.support.fixtures_redis import wait_until
from tests.support.fixtures_slack import BOT_TOKEN, SIGNING_SECRET, action_body, signed_headers, slash_body
from tests.support.workers import work_dry

QUEUE = "hvbot-monitor-chat-test"


def _app(w: World) -> App:
    settings = Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                        slack_api_url=w.slack.api_url, queue=QUEUE, channel_post_interval_seconds=0,
                        operators=["U100"], viewers=["U200"])
    return build_app(settings, runtime=build_runtime(settings, connection=w.r))


def _dispatch(app: App, body: str) -> str:
    response = app.dispatch(BoltRequest(body=body, headers={k.lower(): [v] for k, v in signed_headers(body).items()}))
    assert response.status == 200
    return response.body


def _blocks(call) -> list:
    blocks = call.args["blocks"]
    return json.loads(blocks) if isinstance(blocks, str) else blocks


def _posted_alert(w: World, action_id: str) -> tuple[Any, dict[str, Any]]:
    """vm-000-0000 turns Critical and its alert is posted after the group wait: the message and one button."""
    w.set("hv-000", "vm-000-0000", health="Critical")
    w.sweep(0)
    w.tick(30)
    [post] = w.posts()
    actions = [b for b in _blocks(post) if b["type"] == "actions"][0]["elements"]
    return post, next(e for e in actions if e["action_id"] == action_id)


def _say(app: App, text: str, user: str = "U100") -> str:
    data = json.loads(_dispatch(app, slash_body(text, user=user)))
    return str(data["text"])


def test_silence_command_mutes_a_vm_and_needs_an_operator(world):
    w = world(2, 2)
    app = _app(w)
    assert "operator" in _say(app, "silence vm-000-0000 1h", user="U200")
    assert "Usage" in _say(app, "silence vm-000-0000 forever")
    assert "silenced for 1h" in _say(app, "silence vm-000-0000 1h")
    assert "host `hv-001` are silenced" in _say(app, "silence hv-001 30m")
    w.set("hv-000", "vm-000-0000", health="Critical")
    w.set("hv-001", "vm-001-0000", health="Critical")
    for t in (0, 60, 120):
        w.sweep(t)
        w.tick(t + 30)
    assert w.writes() == []
    w.set("hv-000", "vm-000-0001", health="Critical")  # not silenced: alerts
    w.sweep(180)
    w.tick(210)
    assert len(w.posts()) == 1 and "vm-000-0001" in _text(w.posts()[0])


def test_replication_answers_from_the_last_sweep_and_fresh_queues_sweeps(world):
    w = world(2, 2)
    app = _app(w)
    assert "No sweep has run yet" in _say(app, "replication", user="U200")
    w.set("hv-001", "vm-001-0001", health="Warning")
    w.sweep(0)
    answer = _say(app, "replication hv-001", user="U200")
    assert "ago" in answer and "`vm-001-0001` on hv-001" in answer and "health Warning" in answer
    assert "on hv-000" not in answer
    one = _say(app, "replication vm-000-000*", user="U200")
    assert "`vm-000-0000` on hv-000" in one and "`vm-000-0000` on hv-001" in one  # primary and replica side
    fresh = _say(app, "replication hv-000 --fresh", user="U200")
    assert "fresh sweep of 1 host was queued" in fresh
    queued = Queue(QUEUE, connection=w.r, serializer=JSONSerializer).jobs
    assert [j.kwargs["host"] for j in queued if "host" in j.kwargs] == ["hv-000"]
    # `replication HOST` also queued that host's chart (7 days of health counts); the pattern asked for none
    assert [(j.kwargs["kind"], j.kwargs["hosts"]) for j in queued if "kind" in j.kwargs] == [("fleet", ["hv-001"])]


def test_ack_button_stops_repeats(world):
    w = world(2, 2, repeat_interval_s=300)
    app = _app(w)
    post, ack = _posted_alert(w, alert_views.ACTION_ACK)
    _dispatch(app, action_body(alert_views.ACTION_ACK, ack["value"], user="U200",
                               response_url=w.slack.response_url("viewer")))
    w.slack.wait_for(lambda calls: [c for c in calls if c.path.endswith("/viewer")], 10)
    key = plain(ack["value"])  # the message key, under the button's one-use token
    assert not json.loads(w.r.hget("hvbot:alerts:msgs", key))["acked"]  # a viewer may not ack
    _dispatch(app, action_body(alert_views.ACTION_ACK, ack["value"], message_ts=post.response["ts"],
                               response_url=w.slack.response_url("ack")))
    reply = w.slack.wait_for(lambda calls: [c for c in calls if c.path.endswith("/ack")], 10)[0]
    assert "acknowledged" in reply.args["text"]
    wait_until(lambda: json.loads(w.r.hget("hvbot:alerts:msgs", key))["acked"], 10, "ack stored")
    for t in range(60, 721, 60):
        w.sweep(t)
        w.tick(t + 30)
    assert len(w.posts()) == 1


def test_snooze_button_silences_the_message_groups(world):
    w = world(2, 2)
    app = _app(w)
    post, snooze = _posted_alert(w, f"{alert_views.ACTION_SNOOZE}_3600")
    _dispatch(app, action_body(snooze["action_id"], snooze["value"], message_ts=post.response["ts"],
                               response_url=w.slack.response_url("snooze")))
    reply = w.slack.wait_for(lambda calls: [c for c in calls if c.path.endswith("/snooze")], 10)[0]
    assert "snoozed this alert for 1 h" in reply.args["text"]
    silences = [json.loads(v) for v in w.r.hgetall("hvbot:alerts:silences").values()]
    assert [(s["kind"], s["by"], s["reason"]) for s in silences] == [("group", "U100", "snoozed")]


def _menu_body(value: str, user: str, response_url: str) -> str:
    from urllib.parse import quote

    payload = {
        "type": "block_actions", "user": {"id": user, "username": user.lower(), "team_id": "T0HVBOT"},
        "api_app_id": "A0HVBOT", "team": {"id": "T0HVBOT"}, "channel": {"id": "C100", "name": "ops"},
        "container": {"type": "message", "message_ts": "1.1", "channel_id": "C100", "is_ephemeral": False},
        "trigger_id": "1.2.3", "response_url": response_url,
        "actions": [{"action_id": alert_views.ACTION_VM, "block_id": "b1", "type": "overflow",
                     "selected_option": {"text": {"type": "plain_text", "text": "x"}, "value": value},
                     "action_ts": "1.2"}],
    }
    return "payload=" + quote(json.dumps(payload))


def menu_values(post: Any, vm: str) -> dict[str, str]:
    """The VM menu of `vm`'s row in a posted alert: verb -> the option's value (resume/resync sealed)."""
    menu = next(b["accessory"] for b in _blocks(post) if b.get("accessory") and f"*{vm}*" in b["text"]["text"])
    return {plain(o["value"]).split("|")[0]: o["value"] for o in menu["options"]}


def test_vm_menu_details_and_resume_through_a_worker(world):
    w = world(2, 2)
    app = _app(w)
    w.set("hv-000", "vm-000-0000", state="Suspended")
    post, _ = _posted_alert(w, alert_views.ACTION_ACK)
    menu = menu_values(post, "vm-000-0000")
    _dispatch(app, _menu_body(menu["details"], "U200", w.slack.response_url("details")))
    details = w.slack.wait_for(lambda calls: [c for c in calls if c.path.endswith("/details")], 10)[0]
    assert "`vm-000-0000` on hv-000" in details.args["text"] and "Suspended" in details.args["text"]
    _dispatch(app, _menu_body(menu["resume"], "U200", w.slack.response_url("refused")))
    refused = w.slack.wait_for(lambda calls: [c for c in calls if c.path.endswith("/refused")], 10)[0]
    assert "operator" in refused.args["text"]
    _dispatch(app, _menu_body(menu["resume"], "U100", w.slack.response_url("resume")))
    w.slack.wait_for(lambda calls: [c for c in calls if c.path.endswith("/resume")], 10)
    queue = Queue(QUEUE, connection=w.r, serializer=JSONSerializer)
    wait_until(lambda: queue.count == 1, 10, "resume job queued")
    work_dry(queue, w.r)
    assert queue.finished_job_registry.count == 1
    vm = next(v for v in w.lab.fleet.hosts["hv-000"].vms if v.name == "vm-000-0000")
    assert vm.replication.state != "Suspended"
    resumes = [e for e in w.lab.command_log("hv-000") if e.cmdlet == "Resume-VMReplication"]
    assert len(resumes) == 1 and ("VMName", ["vm-000-0000"]) in [(k, list(v)) for k, v in resumes[0].parameters
                                                                 if k == "VMName"]
