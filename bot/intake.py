"""Lookups are acked first and queued right after, off the request thread.

Why: under load, a request thread that waits on Redis before it can ack queues behind every busy thread for the
GIL (measured: the Redis round trip grew from 0.5 ms to ~30 ms at 20 concurrent requests). Acking first keeps the
ack path pure CPU, as a bare Bolt app's is. What that must not cost:
- Redis known to be down: the ack itself says so (a ping is made when the last state is unknown or bad);
- Redis failing after the ack: the requester's message is replaced through its response_url (no Redis needed);
- nothing is lost silently: every submitted request is either queued (and audited) or reported as not started.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import redis
from slack_sdk.webhook import WebhookClient

log = logging.getLogger("hvbot.intake")

RECHECK_SECONDS = 1.0  # while Redis looks down, ping at most this often before answering


class Intake:
    def __init__(self, connection: redis.Redis, workers: int = 1) -> None:  # one thread: queued in arrival order
        self.connection = connection
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hvbot-intake")
        self._lock = threading.Lock()
        self._healthy: bool | None = None  # None: not known yet
        self._checked_at = 0.0
        self._pending: set[Future[None]] = set()

    def redis_up(self) -> bool:
        """True unless Redis is known to be down; pings only when the state is unknown or bad (rarely)."""
        with self._lock:
            fresh = time.monotonic() - self._checked_at < RECHECK_SECONDS
            if self._healthy or (self._healthy is False and fresh):
                return bool(self._healthy)
        try:
            up = bool(self.connection.ping())
        except redis.RedisError:
            up = False
        self._mark(up)
        return up

    def submit(self, enqueue: Callable[[], object], response_url: str, what: str) -> None:
        """Run `enqueue` after the ack; if Redis fails, tell the requester through `response_url`."""
        future = self._pool.submit(self._run, enqueue, response_url, what)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until everything submitted so far is queued (console, demo, tests)."""
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            future.result(timeout=timeout)

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _run(self, enqueue: Callable[[], object], response_url: str, what: str) -> None:
        try:
            enqueue()
            self._mark(True)
        except redis.RedisError:
            self._mark(False)
            log.warning("Redis unreachable: %s was acked but not queued; telling the requester", what)
            self._tell(response_url, what)

    def _mark(self, up: bool) -> None:
        with self._lock:
            self._healthy, self._checked_at = up, time.monotonic()

    @staticmethod
    def _tell(response_url: str, what: str) -> None:
        text = (f"`{what}` was not started: hvbot lost its job queue (Redis) just now. "
                "Please try again in a minute; if this persists, tell the hvbot admins.")
        if not response_url:
            return
        try:
            WebhookClient(response_url, timeout=5).send(text=text, response_type="ephemeral", replace_original=True)
        except Exception:  # noqa: BLE001 - Slack unreachable too: the log line above is all that is left
            log.exception("could not tell the requester that %s was not started", what)
