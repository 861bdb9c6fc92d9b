"""The one-thread HTTP loop (bot/http_loop.py) that `hvbot serve` runs its inline-acking Bolt app on.

Real sockets and a real Bolt app with signed requests; the end-to-end path through `hvbot serve` is
test_bot_http.py's.
"""

from __future__ import annotations

import http.client
import re
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.fake_slack import FakeSlack
from bot.http_server import BoltHTTPServer
from tests.fixtures_redis import TEST_QUEUE, test_redis_url
from tests.fixtures_slack import BOT_TOKEN, SIGNING_SECRET, HvbotProcess, free_port, signed_headers, slash_body

WAIT = 10  # seconds: only ever reached when something is broken


class _Work:
    """Background work: counts the steps the loop runs and where they ran."""

    def __init__(self) -> None:
        self.wake: Callable[[], None] = lambda: None
        self.waiting = 0
        self.threads: list[str] = []
        self.done = threading.Event()
        self._lock = threading.Lock()

    def attach(self, wake: Callable[[], None]) -> None:
        self.wake = wake

    def add(self) -> None:
        with self._lock:
            self.waiting += 1
        self.wake()

    def pending(self) -> bool:
        return self.waiting > 0

    def waited(self) -> float:
        return 0.0

    def run(self) -> None:
        with self._lock:
            self.waiting -= 1
        self.threads.append(threading.current_thread().name)
        self.done.set()


class _Served:
    def __init__(self, server: BoltHTTPServer, work: _Work, release: threading.Event,
                 blocked: threading.Event) -> None:
        self.server, self.work, self.release, self.blocked = server, work, release, blocked

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=WAIT)

    def slash(self, conn: http.client.HTTPConnection, text: str) -> tuple[int, str]:
        body = slash_body(text)
        conn.request("POST", "/slack/events", body=body, headers=signed_headers(body))
        response = conn.getresponse()
        return response.status, response.read().decode()


@pytest.fixture
def served(fake_slack: FakeSlack) -> Iterator[_Served]:
    app = App(client=WebClient(token=BOT_TOKEN, base_url=fake_slack.api_url), signing_secret=SIGNING_SECRET,
              process_before_response=True)
    release, blocked, work = threading.Event(), threading.Event(), _Work()

    @app.command("/hyperv")
    def hyperv(ack: Ack, body: dict[str, Any]) -> None:
        if body["text"] == "block":  # a handler stuck on something, e.g. Redis unreachable
            blocked.set()
            release.wait(WAIT)
        if body["text"] == "queue":
            work.add()
        ack(f"ok {body['text']} on {threading.current_thread().name}")

    server = BoltHTTPServer(app, "127.0.0.1", 0, ready=lambda: False, background=work).start()
    try:
        yield _Served(server, work, release, blocked)
    finally:
        release.set()
        server.stop()


def test_signed_requests_on_one_kept_alive_connection_are_answered_on_one_thread(served: _Served) -> None:
    conn = served.connect()
    answers = [served.slash(conn, f"ips {i}") for i in range(3)]
    assert [status for status, _ in answers] == [200] * 3
    threads = {text.rsplit(" on ", 1)[1] for _, text in answers}
    assert len(threads) == 1 and "ok ips 2" in answers[2][1]
    conn.request("POST", "/slack/events", body="x=1", headers={"X-Slack-Signature": "v0=bad",
                                                                "X-Slack-Request-Timestamp": "1"})
    assert conn.getresponse().status == 401  # Bolt's verification still applies


def test_health_readiness_and_unknown_paths(served: _Served) -> None:
    conn = served.connect()
    for method, path, status in (("GET", "/healthz", 200), ("GET", "/readyz", 503), ("GET", "/nope", 404),
                                 ("POST", "/nope", 404), ("PUT", "/slack/events", 501)):
        conn.request(method, path, body=b"" if method != "GET" else None)
        response = conn.getresponse()
        response.read()
        assert (method, path, response.status) == (method, path, status)


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):  # the server closes after a bad request
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"NONSENSE\r\n\r\n", b"400"),
    (b"POST /slack/events HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", b"413"),
    (b"POST /slack/events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", b"501"),
    (b"POST /slack/events HTTP/1.1\r\nContent-Length: -1\r\n\r\n", b"400"),
    (b"POST /slack/events HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n", b"400"),  # a digit, but not 0-9
    (b"GET /healthz HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 70_000 + b"\r\n\r\n", b"431"),
    (b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n", b"200"),
    (b"GET /healthz HTTP/1.0\r\n\r\n", b"200"),  # HTTP/1.0: closed after the answer
])
def test_bad_requests_are_refused_and_closed(served: _Served, request_bytes: bytes, status: bytes) -> None:
    answer = _raw(served.server.port, request_bytes)
    assert answer.split(b" ", 2)[1] == status


def test_a_request_in_pieces_and_two_in_one_segment(served: _Served) -> None:
    body = slash_body("ips 1").encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in signed_headers(body.decode()).items())
    request = f"POST /slack/events HTTP/1.1\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode() + body
    with socket.create_connection(("127.0.0.1", served.server.port), timeout=WAIT) as sock:
        for i in range(0, len(request), 7):  # the loop waits for the rest without blocking anyone
            sock.sendall(request[i:i + 7])
        sock.sendall(request + request.replace(b"Content-Length", b"Connection: close\r\nContent-Length"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK") == 3 and data.count(b"ok ips 1") == 3


def test_expect_100_continue_is_answered(served: _Served) -> None:
    body = slash_body("ips 1").encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in signed_headers(body.decode()).items())
    with socket.create_connection(("127.0.0.1", served.server.port), timeout=WAIT) as sock:
        sock.sendall(f"POST /slack/events HTTP/1.1\r\nContent-Length: {len(body)}\r\nExpect: 100-continue\r\n"
                     f"Connection: close\r\n{head}\r\n".encode())
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK") and b"ok ips 1" in data


def test_a_blocked_request_does_not_hold_up_the_others(served: _Served) -> None:
    first = served.connect()
    outcome: dict[str, tuple[int, str]] = {}
    stuck = threading.Thread(target=lambda: outcome.update(blocked=served.slash(first, "block")))
    stuck.start()
    assert served.blocked.wait(WAIT)
    status, text = served.slash(served.connect(), "ips 2")  # answered by a new loop thread meanwhile
    assert status == 200 and "ok ips 2" in text and not outcome
    served.release.set()
    stuck.join(WAIT)
    assert outcome["blocked"][0] == 200
    assert served.slash(first, "ips 3")[0] == 200  # the blocked request's connection was handed back


def test_background_work_runs_on_the_loop_thread_between_requests_and_when_woken(served: _Served) -> None:
    status, text = served.slash(served.connect(), "queue")
    assert status == 200 and served.work.done.wait(WAIT)
    assert served.work.threads == [text.rsplit(" on ", 1)[1]]  # the thread that acked also did the work
    served.work.done.clear()
    threading.Thread(target=served.work.add).start()  # work from another thread wakes the idle loop
    assert served.work.done.wait(WAIT) and not served.work.pending()


def test_serve_queues_every_acked_lookup_before_it_stops(fake_slack: FakeSlack, redis_conn: redis.Redis) -> None:
    port = free_port()
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake_slack.api_url,
           "REDIS_URL": test_redis_url(), "HVBOT_QUEUE": TEST_QUEUE, "HVBOT_LOG_JSON": "false"}
    server = HvbotProcess(["serve", "--port", str(port), "--host", "127.0.0.1"], env, "listening on")
    try:
        server.wait_ready()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
        job_ids = []
        for i in range(30):
            body = slash_body(f"ips 10.0.4.{i}")
            conn.request("POST", "/slack/events", body=body, headers=signed_headers(body))
            response = conn.getresponse()
            text = response.read().decode()
            assert response.status == 200, text
            job_ids += re.findall(r"job (hv[0-9a-f]{10})", text)
        server.proc.send_signal(signal.SIGTERM)  # acked a moment ago: maybe not queued yet
        assert server.proc.wait(WAIT) == 0
    finally:
        server.stop()
    assert len(set(job_ids)) == 30
    assert all(redis_conn.exists(f"rq:job:{job_id}") for job_id in job_ids)
