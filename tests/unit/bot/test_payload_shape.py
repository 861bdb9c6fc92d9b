"""The payload parser and shape check (bot/middleware/payload_shape.py), without I/O: what it refuses says why in
one sentence, and whatever it admits Bolt can build a request from (hypothesis)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_bolt import BoltRequest

from bot.middleware.payload_shape import MAX_DEPTH, MalformedBody, parse, problem
from tests.support.hostile_payloads import click, slash, view


def test_well_formed_requests_are_admitted() -> None:
    for body in (slash("vms"), click(), view(), view("view_closed"), {"ssl_check": "1", "token": "t"},
                 {"type": "url_verification", "challenge": "abc", "token": "t"}):
        assert problem(body) is None, body


@pytest.mark.parametrize(("raw", "content_type", "says"), [
    ("payload={not-json", None, "payload is not valid JSON"),
    ("payload=[1,2]", None, "payload is a JSON list, not an object"),
    ("[]", "application/json", "body is a JSON list"),
    ("{not json", "application/json", "body is not valid JSON"),
    ("", None, "empty body"),
    ("a=1&a=2", None, "given twice"),
    ("&&", None, "neither a form"),
    ("payload=" + quote("[" * 5000), None, "not valid JSON"),
])
def test_unreadable_bodies_are_refused_with_a_reason(raw: str, content_type: str | None, says: str) -> None:
    with pytest.raises(MalformedBody, match=says):
        parse(raw, content_type)


@pytest.mark.parametrize(("body", "says"), [
    ({**click("hvbot_failover_approve"), "user": "U100"}, "user"),
    ({**click(), "actions": []}, "actions"),
    ({k: v for k, v in click().items() if k not in ("channel", "container")}, "no channel"),
    ({**click(), "response_url": ""}, "response_url"),
    ({**slash(), "text": 5}, "text"),
    ({**slash(), "user_id": ""}, "user_id"),
    ({"type": "event_callback", "event": {}}, "malformed event_callback payload"),
    ({"type": "shortcut"}, "unsupported payload type"),
    ({}, "unsupported payload type (missing)"),
    ({**click(), "deep": json.loads("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))}, "nests deeper"),
])
def test_malformed_payloads_are_refused_with_a_reason(body: dict[str, Any], says: str) -> None:
    reason = problem(body)
    assert reason is not None and says in reason and "\n" not in reason, reason


def test_a_form_whose_text_says_payload_is_read_as_the_form() -> None:
    assert parse(urlencode(slash("vms payload")), "application/x-www-form-urlencoded")["text"] == "vms payload"


def test_a_refusal_does_not_echo_the_values_it_refuses() -> None:
    secret = "xoxb-planted-secret-value"
    reason = problem({**click(), "user": secret, "actions": [{"action_id": 5, "value": secret}]})
    assert reason is not None and secret not in reason


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25)
FIELDS = st.sampled_from(["command", "text", "user_id", "channel_id", "response_url", "response_urls", "type", "user",
                          "channel", "team", "enterprise", "authorizations", "actions", "container", "view", "event",
                          "message", "item", "is_ext_shared_channel", "function_data", "ssl_check", "challenge"])
BASES = st.sampled_from([slash(), click(), view(), {"type": "url_verification", "challenge": "c"}, {}])


@settings(max_examples=600, deadline=None)
@given(base=BASES, changes=st.dictionaries(FIELDS, JSON_VALUES, max_size=4), form=st.booleans())
def test_whatever_is_admitted_bolt_can_build_a_request_from(base: dict[str, Any], changes: dict[str, Any],
                                                            form: bool) -> None:
    body = {**base, **changes}
    raw = "payload=" + quote(json.dumps(body)) if form else json.dumps(body)
    content_type = "application/x-www-form-urlencoded" if form else "application/json"
    parsed = parse(raw, content_type)
    if problem(parsed) is None:
        request = BoltRequest(body=raw, headers={"content-type": [content_type]})  # builds Bolt's context
        assert request.body == parsed


@settings(max_examples=300, deadline=None)
@given(raw=st.text(max_size=200), content_type=st.sampled_from([None, "application/json", "text/plain"]))
def test_the_parser_refuses_or_reads_any_text_and_never_raises_other_errors(raw: str, content_type: str | None) -> None:
    try:
        body = parse(raw, content_type)
    except MalformedBody as exc:
        assert str(exc)
    else:
        reason = problem(body)  # never raises: a reason, or None for a request hvbot handles
        assert isinstance(body, dict) and (reason is None or reason.strip())
