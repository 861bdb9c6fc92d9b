"""The HTTP front of the Bolt app on aiohttp: `POST /slack/events`, `GET /healthz`, `GET /readyz`, `GET /metrics`.

Why an event loop and a small dispatch pool, not a thread per connection: measured with bench/ack.py (20
concurrent clients), 20 request threads that each parse HTTP and then wait for the GIL in no particular order
gave a long ack tail (p99 about 4.6 x p50). Here one loop reads and parses requests (aiohttp's C parser) and
hands them, in arrival order, to a few dispatch threads. Bolt's dispatch stays synchronous: our listeners
ack first and queue after (bot/app.py, bot/intake.py); a handler that waits on Redis blocks only its thread.

Bolt sees only what bot/adapters/http_checks.py admits: signed, not a retry or a replay, and of a known shape.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web
from slack_bolt import App, BoltRequest

from bot.adapters.http_checks import Answer, RequestChecks
from bot.metrics import ACK_SECONDS

Exposition = Callable[[str | None], tuple[bytes, str]]  # Accept header -> (body, content type)

EVENTS_PATH = "/slack/events"
MAX_BODY = 1 << 20  # Slack payloads are small; aiohttp answers 413 to anything larger before reading it
DISPATCH_THREADS = 4  # a few, so one ack waiting on a slow Redis does not hold up the others
BACKLOG = 128  # the listen() default of 5 resets connections under a burst of clients


class BoltHTTPServer:
    def __init__(
        self,
        app: App | None,
        host: str = "0.0.0.0",
        port: int = 3000,
        ready: Callable[[], bool] | None = None,
        dispatch_threads: int = DISPATCH_THREADS,
        checks: RequestChecks | None = None,
        metrics: Exposition | None = None,
        not_ready: str = "not ready: Redis unreachable",
    ) -> None:
        if app is not None and checks is None:
            raise ValueError("the events route needs RequestChecks (signing secret and replay cache)")
        self._app = app
        self._checks = checks
        self._ready = ready or (lambda: True)
        self._metrics = metrics
        self._not_ready = not_ready
        self._sock = socket.create_server((host, port), backlog=BACKLOG)  # bound now: a taken port fails here
        self._pool = ThreadPoolExecutor(dispatch_threads, thread_name_prefix="hvbot-dispatch")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def serve_forever(self) -> None:
        asyncio.run(self._serve())

    def start(self) -> BoltHTTPServer:
        """Serve from a background thread; returns once the server accepts requests."""
        self._thread = threading.Thread(target=self.serve_forever, name="hvbot-http", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout=10):
            raise RuntimeError(f"the HTTP front on port {self.port} did not start within 10 s")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._sock.close()

    async def _serve(self) -> None:
        web_app = web.Application(client_max_size=MAX_BODY)
        web_app.router.add_get("/healthz", self._healthz)
        web_app.router.add_get("/readyz", self._readyz)
        if self._metrics is not None:
            web_app.router.add_get("/metrics", self._metrics_page)
        if self._app is not None:
            web_app.router.add_post(EVENTS_PATH, self._events)
        runner = web.AppRunner(web_app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.SockSite(runner, self._sock).start()
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        self._started.set()
        try:
            await self._stopping.wait()
        finally:
            await runner.cleanup()

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _readyz(self, _request: web.Request) -> web.Response:
        ok = await asyncio.get_running_loop().run_in_executor(self._pool, self._ready)  # pings Redis
        return web.Response(status=200 if ok else 503, text="ready" if ok else self._not_ready)

    async def _metrics_page(self, request: web.Request) -> web.Response:
        assert self._metrics is not None  # the route exists only with it
        loop = asyncio.get_running_loop()  # collectors read Redis: off the loop
        body, content_type = await loop.run_in_executor(self._pool, self._metrics, request.headers.get("Accept"))
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _events(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        raw = await request.read()
        headers = {k.lower(): request.headers.getall(k) for k in request.headers}
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(self._pool, self._handle, raw, headers, request.query_string)
        sent = {"Content-Type": "text/plain; charset=utf-8", **answer.headers}  # Bolt's own type wins when it sets one
        ACK_SECONDS.labels("http").observe(time.perf_counter() - started)
        return web.Response(status=answer.status, body=answer.text.encode("utf-8"), headers=sent)

    def _handle(self, raw: bytes, headers: dict[str, list[str]], query: str) -> Answer:
        """Checks, then Bolt: in a dispatch thread, since the replay check and the listeners may wait on Redis."""
        assert self._app is not None and self._checks is not None  # the route exists only with both
        admitted = self._checks.admit(raw, headers, query)
        if isinstance(admitted, Answer):
            return admitted
        return self._dispatch(admitted)

    def _dispatch(self, request: BoltRequest) -> Answer:
        assert self._app is not None
        response = self._app.dispatch(request)
        sent = {k: v for k, v in response.first_headers().items() if k.lower() != "content-length"}
        return Answer(response.status, response.body, sent)
