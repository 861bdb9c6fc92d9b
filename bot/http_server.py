"""A threaded HTTP front for the Bolt app: `POST /slack/events`, `GET /healthz`, `GET /readyz`.

Bolt's own development server handles one request at a time; Slack needs concurrent acks within 3 s.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from slack_bolt import App, BoltRequest

EVENTS_PATH = "/slack/events"
MAX_BODY = 1 << 20  # Slack payloads are small; refuse anything huge before reading it


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # read at listen(): the default 5 resets connections under a burst of clients


class BoltHTTPServer:
    def __init__(
        self, app: App | None, host: str = "0.0.0.0", port: int = 3000, ready: Callable[[], bool] | None = None
    ) -> None:
        handler = type("Handler", (_Handler,), {"app": app, "ready": staticmethod(ready or (lambda: True))})
        self._server = _Server((host, port), handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def start(self) -> BoltHTTPServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="hvbot-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    app: App | None
    ready: Callable[[], bool]
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave as one segment: no 40 ms delayed-ACK stalls
    wbufsize = 1 << 16

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - structured logs come from Bolt
        return

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._send(200, b"ok")
        elif path == "/readyz":
            ok = self.ready()
            self._send(200 if ok else 503, b"ready" if ok else b"not ready: Redis unreachable")
        else:
            self._send(404, b"not found")

    def do_POST(self) -> None:  # noqa: N802
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        if path != EVENTS_PATH or self.app is None:
            self._send(404, b"not found")
            return
        if length > MAX_BODY:
            self._send(413, b"request too large")
            return
        body = self.rfile.read(length).decode("utf-8", errors="replace")
        headers: dict[str, str | Sequence[str]] = {k.lower(): [v] for k, v in self.headers.items()}
        response = self.app.dispatch(BoltRequest(body=body, query=query, headers=headers))
        self._send(response.status, response.body.encode("utf-8"), response.first_headers())

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        sent = {k.lower() for k in (headers or {})}
        for name, value in (headers or {}).items():
            if name.lower() != "content-length":
                self.send_header(name, value)
        if "content-type" not in sent:
            self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
