"""Failover kinds through signed Slack requests (Bolt dispatch), a real RQ worker and the lab over PSRP:
planned happy path, a refused planned failover with its reason, and an unplanned failover to an older point."""

from __future__ import annotations

import json
from typing import Any

from jobs.failover.gather import gather, locate
from jobs.failover.run import recovery_points
from jobs.locks import VmLock
from tests.integration.bot.test_failover_chat import OP, _approve, _buttons, _dispatch, _request, _work, chat  # noqa: F401
from tests.support.fixtures_slack import slash_body


def _mutations(c: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e.host, e.cmdlet) for e in c["lab"].command_log()
            if e.cmdlet.startswith(("Start-", "Stop-", "Set-", "Complete-"))]


def test_planned_failover_through_chat(chat: dict[str, Any]) -> None:
    c = chat
    pair = locate(c["fleet"], "fw01")
    _approve(c, _request(c, "failover fw01 planned"))
    _work(c)
    facts = gather(c["fleet"], "fw01", pair)
    assert facts.replica.mode == "Primary" and facts.replica.vm_state == "Running"
    assert facts.primary.mode == "Replica" and facts.primary.vm_state == "Off"
    assert _mutations(c)[:2] == [(pair.primary, "Stop-VM"), (pair.primary, "Start-VMFailover")]
    updates = json.dumps([x.args for x in c["fake"].calls_to("chat.update")], ensure_ascii=False)
    assert "✓" in updates and "✗" not in updates
    assert VmLock(c["conn"], "fw01").holder() is None


def test_refused_planned_failover_says_why_and_offers_no_request(chat: dict[str, Any]) -> None:
    c = chat
    pair = locate(c["fleet"], "fw01")
    c["lab"].control(None, "replication", {"host": pair.primary, "vm": "fw01", "health": "Critical"})
    _dispatch(c["app"], slash_body("failover fw01 planned", user=OP))
    _work(c)
    preview = c["fake"].calls_to("chat.postEphemeral")[-1]
    text = json.dumps(preview.args, ensure_ascii=False)
    assert "Not possible now" in text and "health Normal" in text
    assert _buttons(preview, "hvbot_fo_request") == []
    assert _mutations(c) == []


def test_unplanned_failover_to_an_older_point_through_chat(chat: dict[str, Any]) -> None:
    c = chat
    pair = locate(c["fleet"], "fw01")
    points = recovery_points(c["fleet"], "fw01")["points"]
    assert len(points) >= 2
    older = points[0]["name"]
    _approve(c, _request(c, f'failover fw01 unplanned --point "{older}"'))
    _work(c)
    assert any(e.cmdlet == "Get-VMSnapshot" and ("Name", older) in e.parameters
               for e in c["lab"].command_log(pair.replica))
    assert [m for m in _mutations(c) if m[1] == "Start-VMFailover"] == [(pair.replica, "Start-VMFailover")]
    assert gather(c["fleet"], "fw01", pair).replica.state == "FailedOverWaitingCompletion"
