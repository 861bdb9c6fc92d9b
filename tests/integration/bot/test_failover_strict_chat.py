"""What the requester reads in Slack when the lab is as strict as Hyper-V: extended replication, a primary that is
not a Replica server, a side where the VM is not replicated, and advice while a failover awaits completion."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.integration.bot.test_failover_chat import (  # noqa: F401 - chat is the fixture
    OP,
    _approve,
    _buttons,
    _dispatch,
    _request,
    _work,
    chat,
)
from tests.support.fixtures_slack import slash_body


def _preview(c: dict[str, Any], text: str) -> tuple[str, Any]:
    _dispatch(c["app"], slash_body(text, user=OP))
    _work(c)
    call = c["fake"].calls_to("chat.postEphemeral")[-1]
    return json.dumps(call.args, ensure_ascii=False), call


def _mutations(c: dict[str, Any]) -> list[str]:
    return [e.cmdlet for e in c["lab"].command_log() if e.cmdlet.startswith(("Start-", "Stop-", "Set-", "Complete-"))]


def test_planned_failover_of_an_extended_chain_is_refused_with_what_to_do(chat: dict[str, Any]) -> None:
    text, call = _preview(chat, "failover mail02 planned")
    assert "Not possible now" in text and "extends replication to hv-b1.lab.local" in text
    assert "a VM has only one replica" in text
    assert "Remove-VMReplication -VMName mail02 -ReplicationRelationshipType Extended" in text
    assert "failover mail02 unplanned" in text
    assert _buttons(call, "hvbot_fo_request") == [] and _mutations(chat) == []


def test_planned_preview_has_no_replica_server_doubt_and_refuses_when_it_is_not_one(chat: dict[str, Any]) -> None:
    text, call = _preview(chat, "failover fw01 planned")
    assert "could not confirm" not in text and _buttons(call, "hvbot_fo_request")
    chat["lab"].control("hv-a1", "replica_server", {"enabled": False})
    text, call = _preview(chat, "failover fw01 planned")
    assert "Not possible now" in text and "hv-a1 is not configured as a Replica server" in text
    assert "Set-VMReplicationServer -ReplicationEnabled $true on hv-a1" in text
    assert _buttons(call, "hvbot_fo_request") == [] and _mutations(chat) == []


def test_a_side_without_replication_is_shown_and_refused_not_an_error(chat: dict[str, Any]) -> None:
    chat["lab"].control("hv-b1", "remove_replication", {"vm": "fw01"})
    text, call = _preview(chat, "failover fw01 unplanned")
    assert "Not possible now" in text
    assert "hv-b1 cannot read the replication of fw01: Replication is not enabled for virtual machine" in text
    assert _buttons(call, "hvbot_fo_request") == [] and _mutations(chat) == []


def test_complete_preview_does_not_recommend_another_failover(chat: dict[str, Any]) -> None:
    c = chat
    c["lab"].control("hv-a1", "power_loss", {})
    c["lab"].control("hv-a1", "recover", {"broken": ["fw01"]})
    _approve(c, _request(c, "failover fw01 unplanned"))
    _work(c)
    text, call = _preview(c, "failover fw01 complete")
    assert "Complete-VMFailover" in text and "Recommended" not in text and _buttons(call, "hvbot_fo_request")
    text, _ = _preview(c, "failover fw01 unplanned")
    assert "Recommended: complete" in text and "Recommended: unplanned" not in text


def test_planned_failover_without_the_shutdown_service_is_refused_with_the_options(chat: dict[str, Any]) -> None:
    chat["lab"].control("hv-a1", "integration_service", {"vm": "fw01", "shutdown": False})
    text, call = _preview(chat, "failover fw01 planned")
    assert "Not possible now" in text and "Shutdown integration service on hv-a1 is Disabled" in text
    assert "Stop-VM -Name fw01 -TurnOff on hv-a1" in text and "failover fw01 unplanned" in text
    assert _buttons(call, "hvbot_fo_request") == [] and _mutations(chat) == []


def test_the_preview_reads_in_words_an_unplanned_and_times_with_their_age(chat: dict[str, Any]) -> None:
    ack = json.dumps(_dispatch(chat["app"], slash_body("failover fw01 unplanned", user=OP)))
    assert "for an unplanned preview" in ack and "a unplanned" not in ack
    _work(chat)
    text = json.dumps(chat["fake"].calls_to("chat.postEphemeral")[-1].args, ensure_ascii=False)
    assert re.search(r"last replication \d{4}-\d\d-\d\d \d\d:\d\d UTC \((just now|[\w ]+ ago)\)", text), text
    assert not re.search(r"last replication \d{4}-\d\d-\d\dT", text)
    assert re.search(r"changes made on the primary after \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC are lost", text), text
