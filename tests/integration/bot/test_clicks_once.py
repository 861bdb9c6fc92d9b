"""Every button that changes something runs once, through the real HTTP front with signed requests, a real RQ
worker and the lab: the same click sent again (re-signed, as a double click or a replay within Slack's 5-minute
window produces, and byte for byte) gets "this button was already used" and starts nothing; the lab's command
log counts what reached the hosts."""

from __future__ import annotations

import json
import time
from typing import Any

from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from bot.views import alerts as alert_views
from tests.integration.bot.test_failover_chat import APP1, APP2, OP, _buttons, _work
from tests.integration.bot.test_failover_chat import chat as failover_chat  # noqa: F401  # the shared set-up
from tests.integration.bot.test_monitor_chat import QUEUE, _app, _blocks, _posted_alert, menu_values
from tests.integration.bot.test_monitor_sweep import r, slack, world  # noqa: F401  # fixtures
from tests.integration.bot.test_teaming_chat import (
    _run_value,
    chat,  # noqa: F401  # teaming: the failover set-up + reporters
)
from tests.support.fixtures_slack import action_body, slash_body
from tests.support.http_clicks import answers, front, menu_body

USED = "already used"


def _cmdlets(lab: Any, name: str, host: str | None = None) -> list[Any]:
    return [e for e in lab.command_log(host) if e.cmdlet == name]


def _said(fake: Any, name: str, *phrases: str) -> None:
    """Wait (deadline) until the response_url `name` got an answer containing each phrase: lazy listeners answer
    after the ack, and a refusal can come before the first click's own answer."""
    fake.wait_for(lambda calls: all(any(p in json.dumps(x.args, ensure_ascii=False) for x in calls
                                        if x.path.endswith(f"/{name}")) for p in phrases), 15)


def _press_three_times(f: Any, body: str) -> None:
    """The click, the same click re-signed (a double click / replay with a fresh timestamp), and the same bytes.
    One clock reading for all three: read per send, a second boundary between the first two made them the same
    bytes, so the re-signed click was dropped as a replay and never answered (a CI failure)."""
    now = int(time.time())
    f.send(body, timestamp=now)
    f.send(body, timestamp=now - 1)
    f.send(body, timestamp=now - 1)


def test_replayed_teaming_run_sets_the_adapter_once(chat: dict[str, Any]) -> None:
    c = chat
    with front(c["app"]) as f:
        value = _run_value(f.ack(slash_body("teaming print01 on", user=OP)))
        body = action_body("hvbot_teaming_run", value, user=OP, response_url=c["fake"].response_url("run"))
        _press_three_times(f, body)
        other = action_body("hvbot_teaming_run", value, user=OP, response_url=c["fake"].response_url("again"))
        f.send(other, age=2)  # pressed again later, from the card still on screen
        _said(c["fake"], "again", USED)
        _said(c["fake"], "run", USED, "Working on")
    _work(c)
    calls = _cmdlets(c["lab"], "Set-VMNetworkAdapter")
    assert len(calls) == 1 and dict(calls[0].parameters)["VMName"] == "print01"
    assert any(USED in a for a in answers(c["fake"], "again"))
    accepted = [e for e in c["runtime"].audit.recent(50) if e.outcome == "accepted" and "teaming" in e.command]
    assert len(accepted) == 1


def test_replayed_alert_resume_resumes_once(world: Any) -> None:
    w = world(2, 2)
    w.set("hv-000", "vm-000-0000", state="Suspended")
    post, _ = _posted_alert(w, alert_views.ACTION_ACK)
    value = menu_values(post, "vm-000-0000")["resume"]
    with front(_app(w)) as f:
        _press_three_times(f, menu_body(alert_views.ACTION_VM, value, "U100", response_url=w.slack.response_url("rs")))
        f.send(menu_body(alert_views.ACTION_VM, value, "U100", response_url=w.slack.response_url("rs2")), age=2)
        _said(w.slack, "rs2", USED)
        _said(w.slack, "rs", USED, "Queued resume")
    queue = Queue(QUEUE, connection=w.r, serializer=JSONSerializer)
    SimpleWorker([queue], connection=w.r, serializer=JSONSerializer).work(burst=True)
    resumes = _cmdlets(w.lab, "Resume-VMReplication", "hv-000")
    assert len(resumes) == 1 and queue.finished_job_registry.count == 1
    assert any(USED in a for a in answers(w.slack, "rs2"))


def test_ack_and_snooze_act_once(world: Any) -> None:
    w = world(2, 2)
    post, snooze = _posted_alert(w, f"{alert_views.ACTION_SNOOZE}_3600")
    ack = next(e for b in _blocks(post) if b["type"] == "actions" for e in b["elements"]
               if e["action_id"] == alert_views.ACTION_ACK)
    with front(_app(w)) as f:
        for action, name, done in ((snooze, "sn", "snoozed this alert"), (ack, "ak", "acknowledged this alert")):
            _press_three_times(f, action_body(action["action_id"], action["value"], message_ts=post.response["ts"],
                                              response_url=w.slack.response_url(name)))
            _said(w.slack, name, USED, done)
    silences = [json.loads(v) for v in w.r.hgetall("hvbot:alerts:silences").values()]
    assert len(silences) == 1 and silences[0]["by"] == "U100"
    assert sum("snoozed this alert" in a for a in answers(w.slack, "sn")) == 1
    assert sum("acknowledged this alert" in a for a in answers(w.slack, "ak")) == 1, answers(w.slack, "ak")


def test_failover_request_posts_one_approval_card_and_approve_runs_once(chat: dict[str, Any]) -> None:
    c, fake = chat, chat["fake"]
    with front(c["app"]) as f:
        f.ack(slash_body("failover fw01 test", user=OP))
        _work(c)
        value = _buttons(fake.calls_to("chat.postEphemeral")[-1], "hvbot_fo_request")[0]
        _press_three_times(f, action_body("hvbot_fo_request", value, user=OP, response_url=fake.response_url("rq")))
        _said(fake, "rq", USED, "Requested (approval")
        cards = [x for x in fake.calls_to("chat.postMessage") if _buttons(x, "hvbot_fo_approve")]
        assert len(cards) == 1  # one request, one approval card
        approve = _buttons(cards[0], "hvbot_fo_approve")[0]
        now = int(time.time())
        for user, age in ((APP1, 0), (APP1, 1), (APP2, 2)):  # replayed, and a second approver a moment later
            f.send(action_body("hvbot_fo_approve", approve, user=user, channel="C0ONCALL", message_ts="9.9",
                               response_url=fake.response_url(f"ap-{user}")), timestamp=now - age)
        _work(c)
    assert len(_cmdlets(c["lab"], "Start-VMFailover")) == 1  # the decision record: exactly one run
    assert any("already decided" in a for a in answers(fake, f"ap-{APP2}"))


def test_backup_window_run_and_cancel_act_once(chat: dict[str, Any]) -> None:
    c, fake = chat, chat["fake"]
    now = int(time.time())
    with front(c["app"]) as f:
        for name in ("one", "two"):
            # Two separate commands (signed at different times): an identical signed body would be a replay.
            ack = f.ack(slash_body("checkpoint web01", user=OP), timestamp=now if name == "one" else now - 2)
            request_id = next(e["value"] for b in ack["blocks"] if b.get("type") == "actions" for e in b["elements"]
                              if e["action_id"] == "hvbot_bk_run")
            action = "hvbot_bk_run" if name == "one" else "hvbot_bk_dismiss"
            _press_three_times(f, action_body(action, request_id, user=OP, response_url=fake.response_url(name)))
        _said(fake, "one", "already ran", "Started")
        _said(fake, "two", "already run or cancelled", "delete_original")
    _work(c)
    assert len(_cmdlets(c["lab"], "Checkpoint-VM")) == 1
    assert any("already ran" in a for a in answers(fake, "one"))
    assert any("already run or cancelled" in a for a in answers(fake, "two"))
