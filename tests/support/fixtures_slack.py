"""Slack stand-ins for tests: the fake Web API over real HTTP, signed requests, and a Socket Mode server."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from slack_sdk.signature import SignatureVerifier

from bot.adapters.fake_slack import FakeSlack

SIGNING_SECRET = "test-signing-secret-not-real"
BOT_TOKEN = "xoxb-test-token-not-real"


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def slash_body(text: str, user: str = "U100", channel: str = "C100", response_url: str = "") -> str:
    return urlencode({
        "token": "legacy", "team_id": "T0HVBOT", "team_domain": "lab", "channel_id": channel,
        "channel_name": "ops", "user_id": user, "user_name": user.lower(), "command": "/hyperv", "text": text,
        "api_app_id": "A0HVBOT", "response_url": response_url, "trigger_id": "1.2.3",
    })


def action_body(action_id: str, value: str, user: str = "U100", channel: str = "C100", message_ts: str = "",
                response_url: str = "") -> str:
    payload = {
        "type": "block_actions", "user": {"id": user, "username": user.lower(), "team_id": "T0HVBOT"},
        "api_app_id": "A0HVBOT", "team": {"id": "T0HVBOT"}, "channel": {"id": channel, "name": "ops"},
        "container": {"type": "message", "message_ts": message_ts or "1.1", "channel_id": channel,
                      "is_ephemeral": not message_ts},
        "trigger_id": "1.2.3", "response_url": response_url,
        "actions": [{"action_id": action_id, "block_id": "b1", "type": "button", "value": value,
                     "action_ts": "1.2"}],
    }
    return "payload=" + quote(json.dumps(payload))


def signed_headers(body: str, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature}


class SocketModeServer:
    """A local Socket Mode endpoint (websockets): sends `hello`, delivers envelopes, collects the acks."""

    def __init__(self) -> None:
        self.acks: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._clients: list[Any] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="socket-mode-server", daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link"

    def start(self) -> SocketModeServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("Socket Mode server did not start")
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.run_forever()

    async def _serve(self) -> None:
        from websockets.asyncio.server import serve

        self._server = await serve(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()

    async def _handle(self, ws: Any) -> None:
        await ws.send(json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0HVBOT"}}))
        with self._cond:
            self._clients.append(ws)
            self._cond.notify_all()
        async for message in ws:
            with self._cond:
                self.acks.append(json.loads(message))
                self._cond.notify_all()

    def wait_connected(self, timeout: float = 15) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._clients, timeout):
                raise TimeoutError("no Socket Mode client connected")

    def connections(self) -> int:
        """How many clients have connected so far (a reconnect adds one)."""
        with self._cond:
            return len(self._clients)

    def drop(self) -> None:
        """Close every client's WebSocket from the server side, as Slack does when it drops a connection."""
        for ws in list(self._clients):
            asyncio.run_coroutine_threadsafe(ws.close(), self._loop).result(10)

    def deliver(self, envelope: dict[str, Any]) -> None:
        ws = self._clients[-1]
        asyncio.run_coroutine_threadsafe(ws.send(json.dumps(envelope)), self._loop).result(10)

    def wait_ack(self, envelope_id: str, timeout: float = 15) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next((a for a in self.acks if a.get("envelope_id") == envelope_id), None)

        with self._cond:
            if not self._cond.wait_for(found, timeout):
                raise TimeoutError(f"no ack for envelope {envelope_id}")
            return found()  # type: ignore[return-value]

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture
def socket_mode_server() -> Iterator[SocketModeServer]:
    server = SocketModeServer().start()
    yield server
    server.stop()


class HvbotProcess:
    """`hvbot <args>` as a child process with its own environment; stopped (and reaped) by `stop()`."""

    def __init__(self, args: list[str], env: dict[str, str], ready_line: str | None = None) -> None:
        import os
        import subprocess
        import sys
        from pathlib import Path

        exe = Path(sys.executable).with_name("hvbot")
        self.proc = subprocess.Popen([str(exe), *args], env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._drained = threading.Event()
        self._ready_line = ready_line
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            if self._ready_line and self._ready_line in line:
                self._ready.set()
        self._ready.set()  # the process ended: wake any waiter
        self._drained.set()

    def output(self, timeout: float = 15) -> str:
        """Everything it wrote to stderr, once it has exited (after stop()) and its last line was read."""
        if not self._drained.wait(timeout):
            raise TimeoutError("hvbot's stderr is still open")
        return "".join(self.lines)

    def wait_ready(self, timeout: float = 30) -> None:
        if not self._ready.wait(timeout) or self.proc.poll() is not None:
            raise RuntimeError("hvbot did not start:\n" + "".join(self.lines[-30:]))

    def stop(self) -> None:
        import os
        import signal

        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except Exception:  # noqa: BLE001 - a stuck child must not hang the test run
                self.proc.kill()
                self.proc.wait(5)
        try:  # children it left behind (e.g. RQ's scheduler process) share its process group
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def post(port: int, body: str, headers: dict[str, str]) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"http://127.0.0.1:{port}/slack/events", data=body.encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def get(port: int, path: str) -> tuple[int, str]:
    """GET a path of a local hvbot HTTP front: (status, body), or (0, "") while nothing listens there."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return 0, ""
