"""`/hyperv teaming VM on|off` through signed Bolt requests, real Redis, an in-process RQ worker, the lab over PSRP
and the fake Slack: grammar, operator role at command and click time, the confirm card with its warning, the
change verified on the host, --host for a name on several hosts, and the audit trail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from bot.cli.reporters import reporters_installed
from jobs.inventory.queries import teaming
from tests.integration.bot.test_failover_chat import OP, VIEWER, _dispatch, _work
from tests.integration.bot.test_failover_chat import chat as failover_chat  # noqa: F401  # the shared set-up
from tests.support.fixtures_slack import action_body, slash_body


@pytest.fixture
def chat(failover_chat: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The failover chat set-up, with the worker's real reporters (results to Slack), as `hvbot worker` has."""
    with reporters_installed(failover_chat["runtime"]):
        yield failover_chat


def _allow_teaming(c: dict[str, Any], host: str, vm: str) -> list[str]:
    return [str(r["allow_teaming"]) for r in teaming(c["fleet"], vm, host).rows]  # Get-VMNetworkAdapter


def _run_value(ack: dict[str, Any]) -> str:
    return next(e["value"] for b in ack.get("blocks", []) if b.get("type") == "actions" for e in b["elements"]
                if e["action_id"] == "hvbot_teaming_run")


def _click(c: dict[str, Any], value: str, user: str, name: str) -> None:
    """Click Run; the lazy listener answers through the response_url: wait for that answer (deadline)."""
    _dispatch(c["app"], action_body("hvbot_teaming_run", value, user=user, response_url=c["fake"].response_url(name)))
    c["fake"].wait_for(lambda calls: [x for x in calls if x.method == "response_url" and x.path.endswith(f"/{name}")],
                       15)


def _answers(c: dict[str, Any], name: str) -> list[str]:
    return [json.dumps(x.args, ensure_ascii=False) for x in c["fake"].calls_to("response_url")
            if x.path.endswith(f"/{name}")]


def _set_set_teaming_calls(c: dict[str, Any]) -> list[Any]:
    return [e for e in c["lab"].command_log() if e.cmdlet == "Set-VMNetworkAdapter"]


def test_grammar_and_usage(chat: dict[str, Any]) -> None:
    ack = _dispatch(chat["app"], slash_body("teaming file01 maybe", user=OP))
    assert "optionally followed by `on` or `off`" in ack["text"] and "teaming [VM [on|off]]" in ack["text"]
    ack = _dispatch(chat["app"], slash_body("teaming file* on", user=OP))
    assert "no * wildcards" in ack["text"]
    ack = _dispatch(chat["app"], slash_body("teaming file01 on extra", user=OP))
    assert "optionally followed" in ack["text"]
    assert _set_set_teaming_calls(chat) == []


def test_viewer_lookup_still_works_and_viewer_cannot_change(chat: dict[str, Any]) -> None:
    c = chat
    ack = _dispatch(c["app"], slash_body("teaming file01", user=VIEWER, response_url=c["fake"].response_url("lk")))
    assert "Working on" in ack["text"]
    _work(c)
    assert any("file01" in a for a in _answers(c, "lk"))
    ack = _dispatch(c["app"], slash_body("teaming file01 on", user=VIEWER))
    assert "needs the *operator* role" in ack["text"] and "actions" not in json.dumps(ack)
    assert any(e.outcome == "refused" and e.user == VIEWER for e in c["runtime"].audit.recent(20))


def test_on_with_confirm_card_runs_verifies_reports_and_audits(chat: dict[str, Any]) -> None:
    c = chat
    assert _allow_teaming(c, "hv-a1", "print01") == ["Off"]
    ack = _dispatch(c["app"], slash_body("teaming print01 on", user=OP))
    shown = json.dumps(ack)
    assert "disconnected when the host's physical NIC fails" in shown and "own NIC team" in shown
    button = next(e for b in ack["blocks"] if b.get("type") == "actions" for e in b["elements"]
                  if e["action_id"] == "hvbot_teaming_run")
    assert button["confirm"]["confirm"]["text"] == "Set On" and button["style"] == "danger"  # Slack's confirm
    assert _set_set_teaming_calls(c) == []  # nothing runs before the click
    _click(c, button["value"], VIEWER, "cv")  # the role is checked again at click time
    assert any("operator" in a for a in _answers(c, "cv"))
    _click(c, button["value"], OP, "co")
    _work(c)
    calls = _set_set_teaming_calls(c)
    assert len(calls) == 1 and calls[0].host == "hv-a1"
    assert dict(calls[0].parameters)["AllowTeaming"] == "On" and dict(calls[0].parameters)["VMName"] == "print01"
    assert _allow_teaming(c, "hv-a1", "print01") == ["On"]
    final = _answers(c, "co")[-1]
    assert "print01" in final and "On" in final and "Off" not in final
    outcomes = [(e.user, e.outcome) for e in c["runtime"].audit.recent(20) if "teaming print01 on" in e.command]
    assert (VIEWER, "refused") in outcomes and (OP, "accepted") in outcomes and (OP, "done") in outcomes


def test_name_on_several_hosts_needs_host(chat: dict[str, Any]) -> None:
    c = chat
    value = _run_value(_dispatch(c["app"], slash_body("teaming app01 on", user=OP)))
    _click(c, value, OP, "amb")
    _work(c)
    assert any("several hosts" in a and "--host" in a for a in _answers(c, "amb"))
    assert _set_set_teaming_calls(c) == []
    value = _run_value(_dispatch(c["app"], slash_body("teaming app01 on --host hv-a2", user=OP)))
    _click(c, value, OP, "one")
    _work(c)
    assert [e.host for e in _set_set_teaming_calls(c)] == ["hv-a2"]
    assert _allow_teaming(c, "hv-a2", "app01") == ["On"] and _allow_teaming(c, "hv-a1", "app01") == ["Off"]
    # and back off again
    value = _run_value(_dispatch(c["app"], slash_body("teaming app01 off --host hv-a2", user=OP)))
    _click(c, value, OP, "off")
    _work(c)
    assert _allow_teaming(c, "hv-a2", "app01") == ["Off"]
