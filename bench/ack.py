"""Ack latency of `/hyperv ips` through `hvbot serve` vs a bare Bolt app that only acks, in the same run.

Both servers run as child processes on real Redis (REDIS_URL, database 14, emptied afterwards): `hvbot serve`
on its own front (bot/adapters/http.py, aiohttp), the bare app on a thread per connection (see serve_bare).
20 keep-alive client connections, driven by one selector loop, send 1,000 signed requests to each,
alternating between the two servers in 10 rounds of 100.
Last line: RESULT p50_ms=<float> p99_ms=<float> bare_p50_ms=<float> bare_p99_ms=<float> requests=<int>
"""

from __future__ import annotations

import os
import selectors
import socket
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from slack_sdk.signature import SignatureVerifier

from measure.own_redis import use_own_redis

SECRET = "bench-signing-secret"
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "1000"))  # a multiple of ROUNDS
CLIENTS = 20
WARMUP = 100
ROUNDS = 10


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _redis_url() -> str:
    parts = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    return urlunsplit((parts.scheme, parts.netloc, "/14", "", ""))


class _BareHandler(BaseHTTPRequestHandler):
    """Thread per connection, HTTP/1.1 keep-alive, no Nagle: the bare app's strongest front we measured."""

    app: Any
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return

    def do_POST(self) -> None:  # noqa: N802
        from slack_bolt import BoltRequest

        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        headers = {k.lower(): [v] for k, v in self.headers.items()}
        response = self.app.dispatch(BoltRequest(body=body, headers=headers))
        data = response.body.encode()
        self.send_response(response.status)
        self.send_header("Content-Type", response.first_headers().get("content-type", "text/plain"))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _BareServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def serve_bare(port: int) -> None:
    """A Bolt app that only acks, in Bolt's default ack mode.

    Its front is a thread per connection, not hvbot's: Bolt's default mode parks the request's thread while
    the listener runs (polling for the ack every 10 ms), which suits a thread per connection. Measured on
    hvbot's aiohttp front with 20 dispatch threads instead, its p99 was worse (18.3 and 24.0 ms against
    15.9 and 15.9 ms), so this is the stronger baseline.
    """
    from slack_bolt import App
    from slack_sdk import WebClient

    # auth.test against the same fake Web API as hvbot, at start-up (as hvbot does), not on the first request
    app = App(client=WebClient(token="xoxb-bare", base_url=os.environ["SLACK_API_URL"]), signing_secret=SECRET)

    @app.command("/hyperv")
    def only_ack(ack):  # type: ignore[no-untyped-def]
        ack("ok")

    handler = type("Handler", (_BareHandler,), {"app": app})
    server = _BareServer(("127.0.0.1", port), handler)
    print("listening", flush=True)
    server.serve_forever()


def _start(kind: str, port: int, env: dict[str, str]) -> subprocess.Popen[str]:
    if kind == "bare":
        cmd = [sys.executable, __file__, "--serve-bare", str(port)]
    else:
        cmd = [str(Path(sys.executable).with_name("hvbot")), "serve", "--port", str(port), "--host", "127.0.0.1"]
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    assert proc.stdout is not None
    for line in proc.stdout:  # wait for the server's "listening" line
        if "listening" in line:
            break
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc


def _body(i: int) -> str:
    return urlencode({"command": "/hyperv", "text": "ips 10.0.4.17", "user_id": f"U{i % 50:04d}",
                      "channel_id": "C100", "team_id": "T1", "api_app_id": "A1", "trigger_id": str(i),
                      "response_url": "http://127.0.0.1:9/unused"})


def _signed(i: int, verifier: SignatureVerifier) -> bytes:
    """One complete HTTP/1.1 request, signed now (Bolt accepts a timestamp up to 5 minutes old)."""
    body = _body(i)
    ts = str(int(time.time()))
    head = (f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body.encode())}\r\n"
            f"X-Slack-Request-Timestamp: {ts}\r\n"
            f"X-Slack-Signature: {verifier.generate_signature(timestamp=ts, body=body)}\r\n\r\n")
    return head.encode() + body.encode()


class _Clients:
    """CLIENTS keep-alive connections driven by one selector loop, each sending its next request on an answer.

    Why one loop and pre-signed requests: measured, 20 client threads that sign and parse with http.client
    saturate this process's GIL when the server answers fast, and the wait for it lands in the figures (server-
    side p99 8.8 ms, client-measured 27.9 ms). Here the client's work per request is a send and a recv, and the
    clock is read as soon as the answer is readable.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.verifier = SignatureVerifier(SECRET)
        self.conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(CLIENTS)]
        for conn in self.conns:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.setblocking(False)

    def run(self, count: int) -> list[float]:
        requests = [_signed(i, self.verifier) for i in range(count)]  # signing is not part of the ack latency
        times: list[float] = []
        sel = selectors.DefaultSelector()
        state: dict[socket.socket, tuple[float, bytearray]] = {}
        nxt = 0

        def send(conn: socket.socket) -> None:
            nonlocal nxt
            state[conn] = (time.perf_counter(), bytearray())
            conn.sendall(requests[nxt])  # ~400 bytes: fits the socket buffer at once
            nxt += 1

        for conn in self.conns[:count]:
            sel.register(conn, selectors.EVENT_READ)
            send(conn)
        while state:
            for key, _ in sel.select(timeout=10) or _timeout():
                conn = key.fileobj
                assert isinstance(conn, socket.socket)
                started, buf = state[conn]
                buf += conn.recv(65536)
                if not _complete(buf):
                    continue
                times.append((time.perf_counter() - started) * 1000)
                if not buf.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"HTTP error: {bytes(buf[:80])!r}")
                del state[conn]
                if nxt < count:
                    send(conn)
                else:
                    sel.unregister(conn)
        sel.close()
        return times


def _timeout() -> list[tuple[selectors.SelectorKey, int]]:
    raise RuntimeError("no answer within 10 s")


def _complete(buf: bytearray) -> bool:
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    length = 0
    for line in bytes(buf[:head_end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return len(buf) >= head_end + 4 + length


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    use_own_redis()
    import redis

    from bot.adapters.fake_slack import FakeSlack

    url = _redis_url()
    with FakeSlack() as fake:
        env = {"SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": fake.api_url,
               "REDIS_URL": url, "HVBOT_QUEUE": "hvbot-bench", "HVBOT_LOG_JSON": "true"}
        bare_port, hv_port = _free_port(), _free_port()
        procs = [_start("bare", bare_port, env), _start("hvbot", hv_port, env)]
        try:
            bare_clients, hv_clients = _Clients(bare_port), _Clients(hv_port)
            bare_clients.run(WARMUP), hv_clients.run(WARMUP)
            bare, ours = [], []
            for _ in range(ROUNDS):  # alternate in rounds so background load hits both alike
                bare += bare_clients.run(REQUESTS // ROUNDS)
                ours += hv_clients.run(REQUESTS // ROUNDS)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)
            redis.Redis.from_url(url).flushdb()
    print(f"hvbot serve: {REQUESTS} signed /hyperv ips requests, {CLIENTS} clients (parse, authorize, audit, enqueue)")
    print(f"  p50 {_pct(ours, 50):.2f} ms  p99 {_pct(ours, 99):.2f} ms  max {max(ours):.2f} ms")
    print("bare Bolt app (ack only), thread per connection:")
    print(f"  p50 {_pct(bare, 50):.2f} ms  p99 {_pct(bare, 99):.2f} ms  max {max(bare):.2f} ms")
    print(f"RESULT p50_ms={_pct(ours, 50):.2f} p99_ms={_pct(ours, 99):.2f} bare_p50_ms={_pct(bare, 50):.2f} "
          f"bare_p99_ms={_pct(bare, 99):.2f} requests={REQUESTS}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-bare":
        serve_bare(int(sys.argv[2]))
    else:
        main()
