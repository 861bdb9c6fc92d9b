"""More failover through chat (signed Bolt requests, real Redis, in-process RQ worker, the lab over PSRP):
a failed step offers its safe next actions as buttons (Cancel → its own preview and approval), cancel of an
unplanned failover (Stop-VMFailover on the replica), cancel of a prepared planned failover (on the primary),
and complete."""

from __future__ import annotations

import json
from typing import Any

from bot.delivery.cards import CardReporter
from jobs import ports as reporting
from jobs.failover.gather import gather, locate
from jobs.locks import VmLock
from tests.integration.bot.test_failover_chat import (  # noqa: F401  # `chat` is the shared fixture
    APP1,
    APP2,
    OP,
    VIEWER,
    _approve,
    _buttons,
    _dispatch,
    _request,
    _work,
    chat,
)
from tests.support.fixtures_slack import action_body


class StepHook(CardReporter):
    """The real card reporter, plus a lab change right after step `after` is reported (between two steps)."""

    def __init__(self, runtime: Any, after: int, change: Any) -> None:
        super().__init__(runtime.settings, runtime.redis, runtime.client, runtime.audit)
        self.after, self.change = after, change

    def step(self, card: dict[str, Any], step: dict[str, Any]) -> None:
        super().step(card, step)
        if step["number"] == self.after:
            self.change()


def _mutations(c: dict[str, Any], host: str) -> list[str]:
    return [e.cmdlet for e in c["lab"].command_log(host) if e.cmdlet.startswith(("Start-", "Stop-", "Complete-",
                                                                                  "Set-"))]


def _card_updates(c: dict[str, Any]) -> list[Any]:
    return c["fake"].calls_to("chat.update")


def _approve_preview(c: dict[str, Any], approver: str) -> None:
    """The latest preview's Request button → approval card → Approve by `approver` → run."""
    fake = c["fake"]
    value = _buttons(fake.calls_to("chat.postEphemeral")[-1], "hvbot_fo_request")[0]
    cards, start = len(fake.calls_to("chat.postMessage")), len(fake.calls)
    _dispatch(c["app"], action_body("hvbot_fo_request", value, user=OP, response_url=fake.response_url("rq")))
    fake.wait_for(lambda calls: len([x for x in calls if x.method == "chat.postMessage"]) > cards, 15)
    # the card's ts is stored right after it is posted, then the requester is told: an Approve before that
    # would run with no card to update
    fake.wait_for(lambda calls: any(x.method == "response_url" and "Requested (approval" in json.dumps(x.args)
                                    for x in calls[start:]), 15)
    card = [x for x in fake.calls_to("chat.postMessage") if _buttons(x, "hvbot_fo_approve")][-1]
    _approve(c, _buttons(card, "hvbot_fo_approve")[0], user=approver)
    _work(c)


def test_failed_step_offers_cancel_as_a_button_with_its_own_preview_and_approval(chat: dict[str, Any]) -> None:
    c, lab, fleet = chat, chat["lab"], chat["fleet"]
    pair = locate(fleet, "fw01")
    # someone starts the replica VM by hand between "prepare" (step 2) and the failover on the replica (step 3)
    reporting.install_steps(StepHook(c["runtime"], 2, lambda: lab.control(
        pair.replica, "vm_state", {"host": pair.replica, "vm": "fw01", "state": "Running"})))
    value = _request(c, "failover fw01 planned")
    _approve(c, value)
    _work(c)
    failed = _card_updates(c)[-1]
    shown = json.dumps(failed.args, ensure_ascii=False)
    assert "FAILED" in shown and "precondition failed" in shown and "PreparedForFailover" in shown
    assert _buttons(failed, "hvbot_fo_next_cancel") == ["cancel:fw01"]
    assert gather(fleet, "fw01", pair).primary.state == "PreparedForFailover"
    assert VmLock(c["conn"], "fw01").holder() is None
    reporting.install_steps(c["runtime"].card_reporter())
    previews = len(c["fake"].calls_to("chat.postEphemeral"))
    # a viewer may not start it; the operator's click opens the cancel preview (nothing runs yet)
    _dispatch(c["app"], action_body("hvbot_fo_next_cancel", "cancel:fw01", user=VIEWER, channel="C0ONCALL",
                                    message_ts="9.9", response_url=c["fake"].response_url("nv")))
    _dispatch(c["app"], action_body("hvbot_fo_next_cancel", "cancel:fw01", user=OP, channel="C0ONCALL",
                                    message_ts="9.9", response_url=c["fake"].response_url("no")))
    _work(c)
    refused = [e for e in c["runtime"].audit.recent(50) if e.outcome == "refused" and e.user == VIEWER]
    assert refused and "failover fw01 cancel" in refused[0].command
    new = c["fake"].calls_to("chat.postEphemeral")[previews:]
    assert len(new) == 1 and new[0].args["user"] == OP  # only the operator's click produced a preview
    preview = json.dumps(new[0].args)
    assert "Stop-VMFailover" in preview and pair.primary in preview
    assert _mutations(c, pair.primary) == ["Stop-VM", "Start-VMFailover"]  # the preview ran nothing
    _approve_preview(c, APP2)
    assert _mutations(c, pair.primary) == ["Stop-VM", "Start-VMFailover", "Stop-VMFailover"]
    assert gather(fleet, "fw01", pair).primary.state != "PreparedForFailover"
    assert "done" in json.dumps(_card_updates(c)[-1].args)


def test_tampered_next_action_value_is_parsed_like_typed_text(chat: dict[str, Any]) -> None:
    c = chat
    answers = c["fake"].calls_to("response_url")
    _dispatch(c["app"], action_body("hvbot_fo_next_cancel", "cancel:fw01;Remove-VM *", user=OP,
                                    response_url=c["fake"].response_url("t")))
    _work(c)
    assert c["fake"].calls_to("chat.postEphemeral") == []  # no preview job ran
    assert [e for e in c["lab"].command_log() if e.cmdlet.startswith("Remove")] == []
    assert len(c["fake"].calls_to("response_url")) >= len(answers)


def test_cancel_of_an_unplanned_failover_runs_on_the_replica(chat: dict[str, Any]) -> None:
    c, lab, fleet = chat, chat["lab"], chat["fleet"]
    pair = locate(fleet, "fw01")
    _approve(c, _request(c, "failover fw01 unplanned"))
    _work(c)
    assert gather(fleet, "fw01", pair).replica.state == "FailedOverWaitingCompletion"
    value = _request(c, "failover fw01 cancel")
    preview = json.dumps(c["fake"].calls_to("chat.postEphemeral")[-1].args)
    assert "Stop-VMFailover" in preview and pair.replica in preview
    _approve(c, value, user=APP2)
    _work(c)
    assert _mutations(c, pair.replica)[-1] == "Stop-VMFailover"
    assert "Stop-VMFailover" not in _mutations(c, pair.primary)  # the primary is left untouched
    after = gather(fleet, "fw01", pair)
    assert after.replica.mode == "Replica" and after.replica.state != "FailedOverWaitingCompletion"
    assert after.primary.mode == "Primary"
    assert "done" in json.dumps(_card_updates(c)[-1].args)


def test_complete_through_chat_commits_the_failover(chat: dict[str, Any]) -> None:
    c, fleet = chat, chat["fleet"]
    pair = locate(fleet, "fw01")
    _approve(c, _request(c, "failover fw01 unplanned"))
    _work(c)
    value = _request(c, "failover fw01 complete")
    preview = json.dumps(c["fake"].calls_to("chat.postEphemeral")[-1].args)
    assert "Complete-VMFailover" in preview and "no longer be cancelled" in preview
    _approve(c, value, user=APP2)
    _work(c)
    assert _mutations(c, pair.replica)[-1] == "Complete-VMFailover"
    assert gather(fleet, "fw01", pair).replica.state == "FailedOver"
    assert "done" in json.dumps(_card_updates(c)[-1].args)
    # a completed failover can no longer be cancelled: the preview says why and offers no Request button
    _dispatch(c["app"], __import__("tests.support.fixtures_slack", fromlist=["slash_body"]).slash_body(
        "failover fw01 cancel", user=OP))
    _work(c)
    refused = c["fake"].calls_to("chat.postEphemeral")[-1]
    assert "cannot be cancelled any more" in json.dumps(refused.args) and not _buttons(refused, "hvbot_fo_request")
