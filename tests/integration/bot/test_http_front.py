"""The HTTP front (bot/adapters/http.py) over real HTTP: routes, limits, readiness, and acks that do not queue
behind a handler that is still waiting."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.adapters.fake_slack import FakeSlack
from bot.adapters.http import MAX_BODY, BoltHTTPServer
from bot.adapters.http_checks import RequestChecks
from bot.middleware.replay import ReplayCache
from tests.support.fixtures_slack import BOT_TOKEN, SIGNING_SECRET, get, post, signed_headers, slash_body


class _Gate:
    """`/hyperv wait` blocks its dispatch thread until released; anything else acks at once."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()


@pytest.fixture
def gate() -> _Gate:
    return _Gate()


@pytest.fixture
def app(fake_slack: FakeSlack, gate: _Gate) -> App:
    bolt = App(client=WebClient(token=BOT_TOKEN, base_url=fake_slack.api_url), signing_secret=SIGNING_SECRET,
               process_before_response=True)

    @bolt.command("/hyperv")
    def hyperv(ack: Ack, body: dict[str, Any]) -> None:
        if body["text"] == "wait":
            gate.entered.set()
            gate.release.wait(timeout=30)
        ack(f"ack {body['text']}")

    return bolt


@pytest.fixture
def ready_flag() -> dict[str, bool]:
    return {"ready": True}


@pytest.fixture
def server(app: App, ready_flag: dict[str, bool], redis_conn: redis.Redis) -> Iterator[BoltHTTPServer]:
    checks = RequestChecks(SIGNING_SECRET, ReplayCache(redis_conn))
    front = BoltHTTPServer(app, "127.0.0.1", 0, ready=lambda: ready_flag["ready"], checks=checks).start()
    yield front
    front.stop()


def test_signed_request_is_acked_and_bad_signature_is_401(server: BoltHTTPServer) -> None:
    body = slash_body("vms")
    assert post(server.port, body, signed_headers(body)) == (200, "ack vms")
    assert post(server.port, body, signed_headers(body, secret="wrong"))[0] == 401


def test_health_readiness_and_unknown_paths(server: BoltHTTPServer, ready_flag: dict[str, bool]) -> None:
    assert get(server.port, "/healthz") == (200, "ok")
    assert get(server.port, "/readyz") == (200, "ready")
    ready_flag["ready"] = False
    assert get(server.port, "/readyz") == (503, "not ready: Redis unreachable")
    assert get(server.port, "/nothing")[0] == 404


def test_a_body_over_the_limit_is_refused_with_413(server: BoltHTTPServer) -> None:
    body = "text=" + "x" * MAX_BODY
    assert post(server.port, body, signed_headers(body))[0] == 413


def test_an_ack_does_not_wait_for_a_handler_that_is_still_busy(server: BoltHTTPServer, gate: _Gate) -> None:
    slow, quick = slash_body("wait"), slash_body("vms")
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(post, server.port, slow, signed_headers(slow))
        assert gate.entered.wait(timeout=10)
        assert post(server.port, quick, signed_headers(quick)) == (200, "ack vms")  # while "wait" is held
        assert not waiting.done()
        gate.release.set()
        assert waiting.result(timeout=10) == (200, "ack wait")


def test_health_only_front_has_no_events_route() -> None:
    front = BoltHTTPServer(None, "127.0.0.1", 0).start()  # Socket Mode: health endpoints only
    try:
        body = slash_body("vms")
        assert post(front.port, body, signed_headers(body))[0] in (404, 405)
        assert get(front.port, "/healthz") == (200, "ok")
    finally:
        front.stop()


def test_a_taken_port_fails_when_the_server_is_made(server: BoltHTTPServer) -> None:
    with pytest.raises(OSError):
        BoltHTTPServer(None, "127.0.0.1", server.port)
