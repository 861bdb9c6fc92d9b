"""Button values go through the grammar's validators, and clicks through the same authorization as commands
(role and channel), through the real HTTP front with signed requests: a crafted value is refused with a clear
answer and nothing reaches a host (the lab's command log) or the queue."""

from __future__ import annotations

import json
import time
from typing import Any

from rq import Queue
from rq.serializers import JSONSerializer
from slack_bolt import App

from bot.app import build_app
from bot.runtime import build_runtime
from bot.views import alerts as alert_views
from bot.views.tokens import CARD_LIFETIME, MESSAGE_LIFETIME, seal
from jobs.keys import BACKUP_PENDING_KEY
from tests.integration.bot.test_failover_chat import (
    APP1,
    OP,
    VIEWER,
    _request,
    _work,
    chat,  # noqa: F401  # the shared set-up
)
from tests.integration.bot.test_monitor_chat import QUEUE, _app, _blocks, _posted_alert
from tests.integration.bot.test_monitor_sweep import r, slack, world  # noqa: F401  # fixtures
from tests.support.fixtures_slack import action_body, slash_body
from tests.support.http_clicks import answers, front, menu_body

NOBODY, ELSEWHERE, ONCALL = "U0NOBODY", "C0ELSEWHERE", "C0ONCALL"
NOT_HERE = "not enabled in this channel"


def _said(fake: Any, name: str) -> str:
    """The first answer through response_url `name` (deadline: lazy listeners answer after the ack)."""
    fake.wait_for(lambda calls: [x for x in calls if x.path.endswith(f"/{name}")], 15)
    return answers(fake, name)[0]


def _mutations(lab: Any) -> list[str]:
    return [e.cmdlet for e in lab.command_log() if not e.cmdlet.startswith(("Get-", "Measure-", "Select-"))]


def test_crafted_alert_menu_values_never_reach_the_host(world: Any) -> None:
    w = world(2, 2)
    w.set("hv-000", "vm-000-0000", state="Suspended")
    _posted_alert(w, alert_views.ACTION_ACK)
    crafted = {  # value -> what the answer must say
        "resume|hv-000|*": "no * wildcards",
        seal("resume|hv-000|*", MESSAGE_LIFETIME): "no * wildcards",
        seal("resync|hv-000|vm-000-*", MESSAGE_LIFETIME): "no * wildcards",
        seal("failover|hv-000|*", MESSAGE_LIFETIME): "no * wildcards",
        seal("resume|hv-999|vm-000-0000", MESSAGE_LIFETIME): "not a host of hvbot's inventory",
        seal("resume|hv-000|vm-nowhere", MESSAGE_LIFETIME): "not seen on hv-000",  # a VM no sweep found
        seal("resume|hv-000;Stop-VM|vm-000-0000", MESSAGE_LIFETIME): "is not a host name",
        seal("resume|hv-000|vm-000-0000|x", MESSAGE_LIFETIME): "not one hvbot offers",
        seal("stop|hv-000|vm-000-0000", MESSAGE_LIFETIME): "not one hvbot offers",
        "resume|hv-000|vm-000-0000": "not offered by hvbot",  # a real choice, but without a token
        seal("resume|hv-000|vm-000-0000", MESSAGE_LIFETIME, now=0): "has expired",
    }
    with front(_app(w)) as f:
        for i, value in enumerate(crafted):
            f.ack(menu_body(alert_views.ACTION_VM, value, "U100", response_url=w.slack.response_url(f"c{i}")))
        said = [_said(w.slack, f"c{i}") for i in range(len(crafted))]
    for answer, expected in zip(said, crafted.values(), strict=True):
        assert expected in answer, (expected, answer)
    assert Queue(QUEUE, connection=w.r, serializer=JSONSerializer).count == 0
    assert _mutations(w.lab) == []


def test_snooze_is_capped_like_silence(world: Any) -> None:
    w = world(2, 2)
    post, _ = _posted_alert(w, alert_views.ACTION_ACK)
    key = next(e["value"] for b in _blocks(post) if b["type"] == "actions" for e in b["elements"]
               if e["action_id"] == alert_views.ACTION_ACK).split(".", 1)[1]
    crafted = {f"{7 * 86400 + 1}|{key}": "at most 7 days", f"99999999999|{key}": "is not a duration",
               f"0|{key}": "no time at all", f"-60|{key}": "is not a duration", f"1h|{key}": "is not a duration"}
    with front(_app(w)) as f:
        for i, value in enumerate(crafted):
            f.ack(action_body(f"{alert_views.ACTION_SNOOZE}_3600", seal(value, MESSAGE_LIFETIME),
                              message_ts=post.response["ts"], response_url=w.slack.response_url(f"s{i}")))
        said = [_said(w.slack, f"s{i}") for i in range(len(crafted))]
        for answer, expected in zip(said, crafted.values(), strict=True):
            assert expected in answer, (expected, answer)
        assert w.r.hgetall("hvbot:alerts:silences") == {}
        # at the cap it is what `/hyperv silence ... 7d` may do, and no more
        f.ack(action_body(f"{alert_views.ACTION_SNOOZE}_3600", seal(f"{7 * 86400}|{key}", MESSAGE_LIFETIME),
                          message_ts=post.response["ts"], response_url=w.slack.response_url("cap")))
        assert "snoozed this alert" in _said(w.slack, "cap")
    [silence] = [json.loads(v) for v in w.r.hgetall("hvbot:alerts:silences").values()]
    assert silence["until"] <= time.time() + 7 * 86400  # within the cap (the engine counts from the wall clock)


def test_crafted_backup_teaming_and_export_values_are_refused(chat: dict[str, Any]) -> None:
    c, fake = chat, chat["fake"]
    crafted = [
        ("hvbot_bk_retry", seal("*", MESSAGE_LIFETIME), "no * wildcards"),
        ("hvbot_bk_resync", seal("web*", MESSAGE_LIFETIME), "no * wildcards"),
        ("hvbot_bk_retry", "web01", "not offered by hvbot"),
        ("hvbot_export_cancel", seal("../../x", MESSAGE_LIFETIME), "not a job id"),
        ("hvbot_teaming_run", seal("teaming file* on", CARD_LIFETIME), "no * wildcards"),
        ("hvbot_teaming_run", seal("teaming print01 on; Remove-VM *", CARD_LIFETIME), "optionally followed"),
        ("hvbot_teaming_run", "teaming print01 on", "not offered by hvbot"),
    ]
    with front(c["app"]) as f:
        for i, (action, value, _) in enumerate(crafted):
            f.ack(action_body(action, value, user=OP, response_url=fake.response_url(f"x{i}")))
        said = [_said(fake, f"x{i}") for i in range(len(crafted))]
    for answer, (_, _, expected) in zip(said, crafted, strict=True):
        assert expected in answer, (expected, answer)
    assert c["runtime"].queue.count == 0 and _mutations(c["lab"]) == []


def _walled_app(c: dict[str, Any]) -> App:
    """The same deployment with an allowed-channel list (C100); the approval channel is not on it."""
    settings = c["settings"].model_copy(update={"allowed_channels": ["C100"]})
    return build_app(settings, runtime=build_runtime(settings, connection=c["conn"]))


def test_backup_cancel_needs_the_role_and_an_allowed_channel(chat: dict[str, Any]) -> None:
    c, fake = chat, chat["fake"]
    with front(_walled_app(c)) as f:
        ack = f.ack(slash_body("checkpoint web01", user=OP))
        request_id = next(e["value"] for b in ack["blocks"] if b.get("type") == "actions" for e in b["elements"]
                          if e["action_id"] == "hvbot_bk_dismiss")
        for user, channel, name in ((NOBODY, ELSEWHERE, "n1"), (NOBODY, "C100", "n2"), (VIEWER, "C100", "v1"),
                                    (OP, ELSEWHERE, "o1")):
            f.ack(action_body("hvbot_bk_dismiss", request_id, user=user, channel=channel,
                              response_url=fake.response_url(name)))
        assert NOT_HERE in _said(fake, "n1") and NOT_HERE in _said(fake, "o1")
        assert "needs the *operator* role" in _said(fake, "n2") and "operator" in _said(fake, "v1")
        assert c["conn"].exists(BACKUP_PENDING_KEY.format(request_id))  # the operator's request is still there
        refused = [e for e in c["runtime"].audit.recent(20) if e.outcome == "refused" and "cancel" in e.command]
        assert {e.user for e in refused} == {NOBODY, VIEWER, OP}
        f.ack(action_body("hvbot_bk_run", request_id, user=OP, response_url=fake.response_url("run")))
        assert "Started" in _said(fake, "run")
    _work(c)
    assert [e.cmdlet for e in c["lab"].command_log() if e.cmdlet == "Checkpoint-VM"] == ["Checkpoint-VM"]


def test_approve_and_reject_check_the_channel_with_the_approval_channel_as_the_exception(
        chat: dict[str, Any]) -> None:
    c, fake = chat, chat["fake"]
    value = _request(c, "failover fw01 test")  # the card is in the approval channel, C0ONCALL
    with front(_walled_app(c)) as f:
        for action, name in (("hvbot_fo_approve", "a1"), ("hvbot_fo_reject", "r1")):
            f.ack(action_body(action, value, user=APP1, channel=ELSEWHERE, message_ts="9.9",
                              response_url=fake.response_url(name)))
        assert NOT_HERE in _said(fake, "a1") and NOT_HERE in _said(fake, "r1")
        _work(c)
        assert [e.cmdlet for e in c["lab"].command_log() if e.cmdlet == "Start-VMFailover"] == []
        f.ack(action_body("hvbot_fo_approve", value, user=APP1, channel=ONCALL, message_ts="9.9",
                          response_url=fake.response_url("a2")))
        _work(c)
    assert [e.cmdlet for e in c["lab"].command_log() if e.cmdlet == "Start-VMFailover"] == ["Start-VMFailover"]
    assert answers(fake, "a2") == []  # approved: the card changes, no refusal


def test_help_answers_only_in_allowed_channels(chat: dict[str, Any]) -> None:
    with front(_walled_app(chat)) as f:
        elsewhere = f.ack(slash_body("help", user=NOBODY, channel=ELSEWHERE))["text"]
        typo = f.ack(slash_body("hepl", user=NOBODY, channel=ELSEWHERE))["text"]
        here = f.ack(slash_body("help", user=NOBODY, channel="C100"))["text"]
    assert NOT_HERE in elsewhere and "/hyperv" not in elsewhere
    assert NOT_HERE in typo and "Did you mean" not in typo  # not even the grammar's suggestions
    assert "Commands:" in here
