"""A local stand-in for the Slack Web API over real HTTP, for the console, the demo and the tests.

It records every call (method, arguments) in order, answers like Slack for the methods hvbot uses, serves
response_urls (`/response/<id>`) and file uploads, and can answer 429 with Retry-After on demand.
slack_sdk talks to it through `WebClient(base_url=fake.api_url)`.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BOT_USER = "UHVBOT"
TEAM = "T0HVBOT"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver listens with a backlog of 5. Bursts of concurrent clicks (each with a response_url) overflow it;
    # Linux then drops the SYN and the client retries after 1, 2, 4 ... 32 s: a "hung" call of up to ~63 s.
    request_queue_size = 1024


@dataclass
class Call:
    method: str  # "chat.postMessage", or "response_url" / "upload" for those endpoints
    args: dict[str, Any]
    status: int
    path: str = ""
    response: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)


class FakeSlack:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.calls: list[Call] = []
        self.groups: dict[str, list[str]] = {}  # usergroup id -> member user ids
        self.socket_mode_url = ""  # answered by apps.connections.open
        self.listeners: list[Callable[[Call], None]] = []
        self._cond = threading.Condition()
        self._ts = itertools.count(1)
        self._failures: dict[str, list[tuple[int, int]]] = {}  # method -> [(status, retry_after)]
        self.files: dict[str, bytes] = {}
        self.file_names: dict[str, str] = {}  # file id -> the filename it was uploaded with
        self._host = host
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = _Server((host, port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-slack", daemon=True)

    # --- lifecycle ----------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.base_url}/response/{name}"

    def start(self) -> FakeSlack:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- test controls ------------------------------------------------------------------------------------
    def fail_next(self, method: str, times: int = 1, status: int = 429, retry_after: int = 1) -> None:
        """The next `times` calls of `method` get `status` (429 carries Retry-After and error=ratelimited)."""
        with self._cond:
            self._failures.setdefault(method, []).extend([(status, retry_after)] * times)

    def calls_to(self, method: str) -> list[Call]:
        with self._cond:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, predicate: Callable[[list[Call]], Any], timeout: float = 30.0) -> Any:
        """Wait until predicate(calls) is truthy (returns its value) or raise TimeoutError. No polling sleeps."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate(list(self.calls))
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"fake Slack: condition not met in {timeout} s; calls: {self.summary()}")
                self._cond.wait(remaining)

    def summary(self) -> list[str]:
        return [f"{c.method}:{c.status}" for c in self.calls]

    # --- request handling ---------------------------------------------------------------------------------
    def _record(self, call: Call) -> None:
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()
        for listener in list(self.listeners):
            listener(call)

    def _take_failure(self, method: str) -> tuple[int, int] | None:
        with self._cond:
            queue = self._failures.get(method)
            return queue.pop(0) if queue else None

    def _next_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    def answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "user_id": BOT_USER, "team_id": TEAM, "bot_id": "BHVBOT", "team": "lab",
                    "user": "hvbot", "url": "https://lab.slack.invalid/"}
        if method == "chat.postMessage":
            channel = str(args.get("channel", ""))
            return {"ok": True, "channel": channel, "ts": self._next_ts(), "message": {"text": args.get("text", "")}}
        if method == "chat.update":
            return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts"), "text": args.get("text", "")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self._next_ts()}
        if method == "usergroups.users.list":
            group = str(args.get("usergroup", ""))
            if group not in self.groups:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": self.groups[group]}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + str(args.get("users", "")).split(",")[0]}}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._ts):06d}"
            self.file_names[file_id] = str(args.get("filename", ""))
            return {"ok": True, "upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = args.get("files")
            files = json.loads(files) if isinstance(files, str) else files or []
            return {"ok": True, "files": [{"id": f.get("id"), "title": f.get("title", "")} for f in files]}
        if method == "views.publish":
            view = args.get("view")
            view = json.loads(view) if isinstance(view, str) else view or {}
            return {"ok": True, "view": {**view, "id": f"V{next(self._ts):06d}", "team_id": TEAM}}
        if method == "apps.connections.open":
            return {"ok": True, "url": self.socket_mode_url}
        return {"ok": True}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeSlack
    disable_nagle_algorithm = True  # headers and body leave as one segment: no 40 ms delayed-ACK stalls
    wbufsize = 1 << 16

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: the calls are recorded
        return

    def do_GET(self) -> None:  # noqa: N802
        self._handle(b"")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self._handle(self.rfile.read(length))

    def _handle(self, raw: bytes) -> None:
        path = urlsplit(self.path)
        if path.path.startswith("/upload/"):
            file_id = path.path.rsplit("/", 1)[-1]
            self.fake.files[file_id] = raw
            self.fake._record(Call("upload", {"file_id": file_id, "size": len(raw)}, 200, path.path))
            return self._send(200, b"OK", "text/plain")
        args = _parse_args(raw, self.headers.get("Content-Type", ""), path.query)
        if path.path.startswith("/response/"):
            self.fake._record(Call("response_url", args, 200, path.path))
            return self._send(200, b"ok", "text/plain")
        if not path.path.startswith("/api/"):
            self.fake._record(Call("not_found", args, 404, path.path))
            return self._send(404, b"no_service", "text/plain")  # e.g. an expired response_url
        method = path.path.rsplit("/", 1)[-1]
        failure = self.fake._take_failure(method)
        if failure is not None:
            status, retry_after = failure
            self.fake._record(Call(method, args, status, path.path))
            body = json.dumps({"ok": False, "error": "ratelimited" if status == 429 else "fatal_error"}).encode()
            return self._send(status, body, "application/json", {"Retry-After": str(retry_after)})
        answer = self.fake.answer(method, args)
        self.fake._record(Call(method, args, 200, path.path, answer))
        self._send(200, json.dumps(answer).encode(), "application/json")

    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def _parse_args(raw: bytes, content_type: str, query: str) -> dict[str, Any]:
    args: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query).items()}
    if raw and "json" in content_type:
        args.update(json.loads(raw.decode("utf-8")))
    elif raw:
        args.update({k: v[-1] for k, v in parse_qs(raw.decode("utf-8")).items()})
    for key in ("blocks", "attachments", "view"):
        if isinstance(args.get(key), str):
            try:
                args[key] = json.loads(args[key])
            except ValueError:
                pass
    return args
