"""Ack latency of `/hyperv ips` through `hvbot serve` vs a bare Bolt app that only acks, in the same run.

Both servers run as child processes behind the same threaded HTTP front (bot.http_server), on real Redis
(REDIS_URL, database 14, emptied afterwards). 20 client threads send 1,000 signed requests to each,
alternating between the two servers in 10 rounds of 100.
Last line: RESULT p50_ms=<float> p99_ms=<float> bare_p50_ms=<float> bare_p99_ms=<float> requests=<int>
"""

from __future__ import annotations

import http.client
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

from slack_sdk.signature import SignatureVerifier

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


def serve_bare(port: int) -> None:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.http_server import BoltHTTPServer

    # auth.test against the same fake Web API as hvbot, at start-up (as hvbot does), not on the first request
    app = App(client=WebClient(token="xoxb-bare", base_url=os.environ["SLACK_API_URL"]), signing_secret=SECRET)

    @app.command("/hyperv")
    def only_ack(ack):  # type: ignore[no-untyped-def]
        ack("ok")

    server = BoltHTTPServer(app, "127.0.0.1", port)
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


class _Clients:
    """CLIENTS threads with one keep-alive connection each, kept across rounds."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.pool = ThreadPoolExecutor(CLIENTS)
        self.local = threading.local()
        self.verifier = SignatureVerifier(SECRET)

    def one(self, i: int) -> float:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        body = _body(i)
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
                   "X-Slack-Signature": self.verifier.generate_signature(timestamp=ts, body=body)}
        start = time.perf_counter()
        conn.request("POST", "/slack/events", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        elapsed = time.perf_counter() - start
        if response.status != 200:
            raise RuntimeError(f"request {i}: HTTP {response.status}")
        return elapsed * 1000

    def run(self, count: int) -> list[float]:
        return list(self.pool.map(self.one, range(count)))


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    import redis

    from bot.fake_slack import FakeSlack

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
    print(f"bare Bolt app (ack only), same HTTP front:")
    print(f"  p50 {_pct(bare, 50):.2f} ms  p99 {_pct(bare, 99):.2f} ms  max {max(bare):.2f} ms")
    print(f"RESULT p50_ms={_pct(ours, 50):.2f} p99_ms={_pct(ours, 99):.2f} bare_p50_ms={_pct(bare, 50):.2f} "
          f"bare_p99_ms={_pct(bare, 99):.2f} requests={REQUESTS}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-bare":
        serve_bare(int(sys.argv[2]))
    else:
        main()
