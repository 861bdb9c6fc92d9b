"""Hostile requests for the HTTP front: bad signature headers, malformed bodies, wrong types in every field of the
slash, block_actions and view payloads, and oversized or control-character text. Each case says which answers are
acceptable; none of them is ever a 500."""

from __future__ import annotations

import copy
import hashlib
import hmac
import http.client
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from tests.support.fixtures_slack import SIGNING_SECRET, free_port

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
Header = tuple[str, str | bytes]
Request = tuple[bytes, tuple[Header, ...]]
FAKE_SLACK_PORT = free_port()  # the suite's fake Slack listens here, so clicks can carry a response_url to it
RESPONSE_URL = f"http://127.0.0.1:{FAKE_SLACK_PORT}/response/hostile"


@dataclass(frozen=True)
class Case:
    """A request made when it is sent (signatures are only good for 5 minutes) and the statuses it may get."""

    name: str
    make: Callable[[], Request]
    expect: tuple[int, ...]

    def send(self, port: int) -> tuple[int, str]:
        return send(port, *self.make())


def now() -> str:
    return str(int(time.time()))


def sign(body: bytes, timestamp: str, secret: str = SIGNING_SECRET) -> str:
    """Slack's v0 signature over raw bytes (slack_sdk's helper needs UTF-8 text; hostile bodies may not be)."""
    base = b"v0:" + timestamp.encode("latin-1") + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed(name: str, body: str | bytes, expect: tuple[int, ...], content_type: str = FORM,
           extra: tuple[Header, ...] = (), skew: int = 0) -> Case:
    raw = body.encode() if isinstance(body, str) else body

    def make() -> Request:
        ts = str(int(time.time()) + skew)
        return raw, (("Content-Type", content_type), ("X-Slack-Request-Timestamp", ts),
                     ("X-Slack-Signature", sign(raw, ts)), *extra)

    return Case(name, make, expect)


def unsigned(name: str, body: bytes, headers: Callable[[], tuple[Header, ...]], expect: tuple[int, ...]) -> Case:
    return Case(name, lambda: (body, (("Content-Type", FORM), *headers())), expect)


def send(port: int, body: bytes, headers: tuple[Header, ...]) -> tuple[int, str]:
    """POST /slack/events with exactly these headers (repeats and raw bytes included)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.putrequest("POST", "/slack/events", skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", errors="replace")
    finally:
        conn.close()


def slash(text: str = "help", **fields: Any) -> dict[str, Any]:
    return {"token": "legacy", "team_id": "T0HVBOT", "team_domain": "lab", "channel_id": "C100",
            "channel_name": "ops", "user_id": "U100", "user_name": "u100", "command": "/hyperv", "text": text,
            "api_app_id": "A0HVBOT", "response_url": "", "trigger_id": "1.2.3", **fields}


def click(action_id: str = "hvbot_page_next", value: str = "hvnosuchjob:1",
          response_url: str = RESPONSE_URL) -> dict[str, Any]:
    return {
        "type": "block_actions", "user": {"id": "U100", "username": "u100", "team_id": "T0HVBOT"},
        "api_app_id": "A0HVBOT", "team": {"id": "T0HVBOT", "domain": "lab"}, "channel": {"id": "C100", "name": "ops"},
        "container": {"type": "message", "message_ts": "1.1", "channel_id": "C100", "is_ephemeral": True},
        "trigger_id": "1.2.3", "response_url": response_url,
        "actions": [{"action_id": action_id, "block_id": "b1", "type": "button", "value": value, "action_ts": "1.2"}],
    }


def view(kind: str = "view_submission") -> dict[str, Any]:
    return {"type": kind, "team": {"id": "T0HVBOT"}, "user": {"id": "U100", "team_id": "T0HVBOT"},
            "api_app_id": "A0HVBOT", "trigger_id": "1.2.3",
            "view": {"id": "V1", "type": "modal", "callback_id": "hvbot_none", "private_metadata": "",
                     "state": {"values": {"b1": {"a1": {"type": "plain_text_input", "value": "x"}}}}}}


def as_payload(body: Any) -> str:
    return "payload=" + quote(json.dumps(body))


# -- 1. signature headers, checked before anything is parsed --------------------------------------------------
def header_cases() -> list[Case]:
    body = urlencode(slash("vms")).encode()

    def stamped(ts: Callable[[], str | bytes],
                signature: Callable[[str], str | bytes]) -> Callable[[], tuple[Header, ...]]:
        def headers() -> tuple[Header, ...]:
            stamp = ts()
            text = stamp.decode("latin-1") if isinstance(stamp, bytes) else stamp
            return ("X-Slack-Request-Timestamp", stamp), ("X-Slack-Signature", signature(text))
        return headers

    def good(ts: str) -> str:
        return sign(body, ts)

    cases = [unsigned(f"timestamp {bad!r}", body, stamped(lambda bad=bad: bad, good), (400,))  # type: ignore[misc]
             for bad in ("abc", "12.5", "-1", "1e9", "1_000", "0x10", "NaN", "inf", "[]", "{}", "None",
                         "99999999999999999999", "+1", "1.0", b"\xef\xbc\x91\xef\xbc\x92", "\u00bd", "1 2", "%31")]
    cases.append(unsigned("no signature headers", body, lambda: (), (401,)))
    cases.append(unsigned("no timestamp", body, lambda: (("X-Slack-Signature", good(now())),), (401,)))
    cases.append(unsigned("no signature", body, lambda: (("X-Slack-Request-Timestamp", now()),), (401,)))
    wrong_signatures: dict[str, Callable[[str], str | bytes]] = {
        "empty": lambda ts: "", "v0= alone": lambda ts: "v0=", "v1": lambda ts: "v1=" + good(ts)[3:],
        "not hex": lambda ts: "v0=" + "g" * 64, "upper-case hex": lambda ts: "v0=" + good(ts)[3:].upper(),
        "too long": lambda ts: good(ts) + "00", "raw bytes": lambda ts: b"v0=\xff\xfe",
        "latin-1 text": lambda ts: "\u00e9" * 10, "another secret": lambda ts: sign(body, ts, secret="wrong"),
    }
    for name, signature in wrong_signatures.items():
        cases.append(unsigned(f"signature {name}", body, stamped(now, signature), (401,)))
    for skew in (-301, -3600, 301, 10**9):
        cases.append(unsigned(f"timestamp skewed {skew} s", body,
                              stamped(lambda skew=skew: str(int(now()) + skew), good), (401,)))  # type: ignore[misc]
    cases.append(unsigned("timestamp twice", body, lambda: (("X-Slack-Request-Timestamp", now()),
                                                            *stamped(now, good)()), (400,)))
    cases.append(unsigned("signature twice", body, lambda: (*stamped(now, good)(),
                                                            ("X-Slack-Signature", good(now()))), (400,)))
    cases.append(signed("body not UTF-8", b"text=\xff\xfe&command=%2Fhyperv", (400,)))
    return cases


# -- 2. signed bodies that are not a Slack request ------------------------------------------------------------
def body_cases() -> list[Case]:
    deep = "[" * 60 + "]" * 60
    forms = ["payload={not-json", "payload=[1,2]", 'payload="text"', "payload=1", "payload=null", "payload=true",
             "payload=", "payload=%7B", "payload=" + quote(json.dumps([click()])), "payload=" + quote(deep),
             "payload=" + quote('{"type":' * 3000), "a=1&a=2", "user_id=U1&user_id=U2&command=%2Fhyperv&text=",
             "&&&", "=", "%%%", "just words", "payload=%7B%7D", "payload=" + quote(json.dumps({"type": "evil"})),
             "&".join(f"f{i}=1" for i in range(250)), "command=%2Fhyperv", "text=vms"]
    cases = [signed(f"form {f[:40]!r}", f, (400,)) for f in forms]
    jsons = ["[]", "{not json", '{"a":', "null", "1", '"x"', "true", "[" * 5000, "{}", '{"type": 5}',
             '{"type": "event_callback", "event": {"type": "app_mention"}}', '{"type": "shortcut"}', "\ufeff{}",
             json.dumps({"type": "block_actions", "nested": json.loads(deep)}), "{" + '"a":{' * 50 + "}" * 51]
    cases += [signed(f"json {j[:40]!r}", j, (400,), content_type=JSON) for j in jsons]
    cases.append(signed("empty body", "", (400,)))
    cases.append(signed("JSON list without a JSON content type", json.dumps([slash()]), (400,)))
    return cases


# -- 3. wrong types in every field ----------------------------------------------------------------------------
WRONG = (5, 1.5, None, True, [], {}, ["U1"], {"id": 5}, "")


def _mutations(base: dict[str, Any], path: tuple[Any, ...] = ()) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every field of `base` (nested objects and the first list item included) replaced by each wrong value."""
    node: Any = base
    for step in path:
        node = node[step]
    keys = range(len(node)) if isinstance(node, list) else list(node)
    for key in keys:
        for wrong in WRONG:
            if node[key] == wrong:
                continue
            mutated = copy.deepcopy(base)
            target: Any = mutated
            for step in path:
                target = target[step]
            target[key] = wrong
            yield ".".join(str(p) for p in (*path, key)) + f"={json.dumps(wrong)}", mutated
        child = node[key]
        if isinstance(child, (dict, list)) and child:
            yield from _mutations(base, (*path, key))


def shape_cases() -> list[Case]:
    """Wrong types everywhere: refused (400), or harmless where the field is optional (200, or Bolt's 404 for a
    view nobody listens to). Slash commands go as JSON here, since a form can carry only strings."""
    cases = [signed(f"slash {name}", json.dumps(body), (200, 400), content_type=JSON)
             for name, body in _mutations(slash("help"))]
    cases += [signed(f"click {name}", as_payload(body), (200, 400)) for name, body in _mutations(click())]
    cases += [signed(f"view {name}", as_payload(body), (400, 404)) for name, body in _mutations(view())]
    return cases


def must_refuse() -> list[Case]:
    """The malformed payloads named in the bug report, and their neighbours: each must be a 400."""
    def without(body: dict[str, Any], *keys: str) -> dict[str, Any]:
        return {k: v for k, v in body.items() if k not in keys}

    approve = click("hvbot_failover_approve", "ap1:digest")
    bodies = {
        "Approve with user as a string": {**approve, "user": "U100"},
        "Approve with actions: []": {**approve, "actions": []},
        "click without a channel": without(click(), "channel", "container"),
        "click with two actions": {**click(), "actions": click()["actions"] * 2},
        "click without user": without(click(), "user"),
        "click with an action that is not an object": {**click(), "actions": ["hvbot_page_next"]},
        "click without action_id": {**click(), "actions": [{"value": "x"}]},
        "click value over 2000 characters": click(value="x" * 2001),
        "click with authorizations: 5": {**click(), "authorizations": 5},
        "click with team: 5": {**click(), "team": 5},
        "view without view": without(view(), "view"),
        "view_closed with view: []": {**view("view_closed"), "view": []},
        "click with event: null": {**click(), "event": None},
        "click with view: null": {**click(), "view": None},
    }
    cases = [signed(name, as_payload(body), (400,)) for name, body in bodies.items()]
    cases.append(signed("slash with text as a number", json.dumps(slash(5)), (400,), content_type=JSON))
    cases.append(signed("slash without user_id", urlencode(without(slash(), "user_id")), (400,)))
    cases.append(signed("slash with an empty channel_id", urlencode(slash(channel_id="")), (400,)))
    cases.append(signed("slash with type and event null (found by hypothesis)",
                        as_payload({**slash(), "type": None, "event": None}), (400,)))
    return cases


# -- 4. text the grammar must answer clearly ------------------------------------------------------------------
TEXTS = ("x" * 3000, "vms " + "a" * 100_000, "ips \x00", "vms web01\x1b[31m", "memory \u202eweb01", "ips 10.0.4.17\x0b",
         "ips \x7f", "\x08\x08help", "vms " + "\U0001f680" * 500, "ips " + "%00" * 10, "vms \ufeffweb01",
         "checkpoints " + "\u0301" * 300, "memory web01\x0c", "audit " + "9" * 400, "vms " + "<@U1>" * 500)
