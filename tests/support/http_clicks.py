"""Clicks and commands through the real HTTP front (bot/adapters/http.py): signed requests over loopback HTTP.

`send(body, age=N)` signs the same body with a timestamp N seconds old: a different signature for the same click,
as a double click, a second user or a replay re-signed within Slack's 5-minute window produce.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import redis
from slack_bolt import App

from bot.adapters.http import BoltHTTPServer
from bot.adapters.http_checks import RequestChecks
from bot.middleware.replay import ReplayCache
from tests.support.fixtures_redis import test_redis_url
from tests.support.fixtures_slack import SIGNING_SECRET, post, signed_headers


class Front:
    """The front as `hvbot serve` runs it: signature, shape and replay checks before Bolt."""

    def __init__(self, app: App) -> None:
        self.connection = redis.Redis.from_url(test_redis_url())
        checks = RequestChecks(SIGNING_SECRET, ReplayCache(self.connection))
        self.server = BoltHTTPServer(app, "127.0.0.1", 0, checks=checks).start()

    def send(self, body: str, age: int = 0, timestamp: int | None = None) -> tuple[int, str]:
        """`timestamp` signs at that time exactly: two sends of one body that must differ (or be the same bytes)
        cannot then fall on either side of a second boundary."""
        when = timestamp if timestamp is not None else int(time.time()) - age
        return post(self.server.port, body, signed_headers(body, timestamp=when))

    def send_json(self, body: str) -> tuple[int, str]:
        """An Events API request: a JSON body, signed like every other request."""
        return post(self.server.port, body, {**signed_headers(body), "Content-Type": "application/json"})

    def ack(self, body: str, age: int = 0, timestamp: int | None = None) -> dict[str, Any]:
        status, text = self.send(body, age, timestamp)
        assert status == 200, (status, text)
        return dict(json.loads(text)) if text else {}


@contextmanager
def front(app: App) -> Iterator[Front]:
    served = Front(app)
    try:
        yield served
    finally:
        served.server.stop()
        served.connection.close()


def menu_body(action_id: str, value: str, user: str, channel: str = "C100", response_url: str = "") -> str:
    """An overflow-menu click (block_actions with `selected_option`), as Slack sends it."""
    payload = {
        "type": "block_actions", "user": {"id": user, "username": user.lower(), "team_id": "T0HVBOT"},
        "api_app_id": "A0HVBOT", "team": {"id": "T0HVBOT"}, "channel": {"id": channel, "name": "ops"},
        "container": {"type": "message", "message_ts": "1.1", "channel_id": channel, "is_ephemeral": False},
        "trigger_id": "1.2.3", "response_url": response_url,
        "actions": [{"action_id": action_id, "block_id": "b1", "type": "overflow",
                     "selected_option": {"text": {"type": "plain_text", "text": "x"}, "value": value},
                     "action_ts": "1.2"}],
    }
    return "payload=" + quote(json.dumps(payload))


def answers(fake: Any, name: str) -> list[str]:
    """What hvbot said through the response_url `name` (ephemeral answers, in order)."""
    return [json.dumps(c.args, ensure_ascii=False) for c in fake.calls if c.path.endswith(f"/{name}")]
