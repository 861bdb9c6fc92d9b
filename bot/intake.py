"""Lookups are acked first and queued right after, off the ack path, many per Redis round trip.

Why: under load, a request that waits on Redis before it can ack queues behind every busy thread for the GIL
(measured: the Redis round trip grew from 0.5 ms to ~30 ms at 20 concurrent requests). Acking first keeps the ack
path pure CPU, as a bare Bolt app's is. Every request waiting at that moment is then queued in one MULTI/EXEC
pipeline: one round trip per batch instead of one per request.

Who runs the batches: by default a thread of the intake's own (console, demo, Socket Mode, tests). Under
`hvbot serve` the HTTP loop runs them between requests on its own thread (`attach`, bot/http_loop.py), so the
queueing never races the acks for the GIL. What neither may cost:
- Redis known to be down: the ack itself says so (a ping is made when the last state is unknown or bad);
- Redis failing after the ack: the requester's message is replaced through its response_url (no Redis needed);
- nothing is lost silently: every submitted request is either queued (and audited) or reported as not started,
  one by one (a refused command of one request does not condemn the others of its batch).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import redis
from redis.client import Pipeline
from slack_sdk.webhook import WebhookClient

log = logging.getLogger("hvbot.intake")

RECHECK_SECONDS = 1.0  # while Redis looks down, ping at most this often before answering
MAX_BATCH = 50  # requests per pipeline: bounds one batch's Redis payload and how long it holds the GIL (~10 ms)
LOOP_STEP = 8  # requests per pipeline in loop mode: every step keeps the acks waiting, ~2 ms at most
REDIS_LOST = ("hvbot lost its job queue (Redis) just now. "
              "Please try again in a minute; if this persists, tell the hvbot admins.")
INTERNAL_ERROR = "hvbot hit an internal error while queueing it. The admins can find it in the log."


def new_job_id() -> str:
    return f"hv{secrets.token_hex(5)}"


@dataclass(frozen=True)
class _Request:
    add: Callable[[Pipeline], object]  # puts the request's Redis commands on the pipeline (does not execute)
    response_url: str
    what: str
    at: float  # time.monotonic() at submit


class Intake:
    def __init__(self, connection: redis.Redis) -> None:
        self.connection = connection
        # one thread, so requests are queued in arrival order; an executor, so whatever is still waiting at
        # interpreter exit is queued before the process ends (its workers are joined at exit). It also tells
        # requesters about failures, which takes a Slack round trip, in loop mode too.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hvbot-intake")
        self._wake: Callable[[], None] | None = None  # set by attach(): a loop runs the batches
        self._batch = MAX_BATCH
        self._lock = threading.Lock()
        self._done_changed = threading.Condition(self._lock)
        self._healthy: bool | None = None  # None: not known yet
        self._checked_at = 0.0
        self._waiting: deque[_Request] = deque()
        self._scheduled = False  # a flush is queued on the pool (thread mode) or the loop was woken (loop mode)
        self._submitted = 0
        self._finished = 0  # queued or reported as not started

    def attach(self, wake: Callable[[], None], step: int = LOOP_STEP) -> None:
        """From now on a loop runs the batches (`pending`, `waited`, `run`), `step` requests at a time; `wake()`
        asks it to look when work arrives."""
        self._wake, self._batch = wake, step

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

    def submit(self, add: Callable[[Pipeline], object], response_url: str, what: str) -> None:
        """Queue a request after the ack: `add(pipe)` puts its commands on its batch's transaction pipeline.

        If that fails, the requester is told through `response_url`.
        """
        with self._lock:
            self._waiting.append(_Request(add, response_url, what, time.monotonic()))
            self._submitted += 1
            first = not self._scheduled
            self._scheduled = True
        if not first:  # already known to whoever runs the batches
            return
        if self._wake is not None:
            self._wake()
        else:
            self._pool.submit(self._flush)

    def pending(self) -> bool:
        return bool(self._waiting)

    def waited(self) -> float:
        """Seconds the oldest waiting request has waited (0 when none waits)."""
        try:
            return time.monotonic() - self._waiting[0].at
        except IndexError:
            return 0.0

    def run(self) -> None:
        """Loop mode: queue the oldest waiting requests, one step's worth, in one pipeline."""
        with self._lock:
            batch = self._take()
            if not self._waiting:
                self._scheduled = False  # the next submit wakes the loop again
        if batch:
            self._queue(batch)

    def flush(self) -> None:
        """Queue everything waiting, in this thread (at shutdown, when the loop no longer runs)."""
        while self.pending():
            self.run()

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until everything submitted so far is queued, or its requester told (console, demo, tests)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._submitted
            while self._finished < target:
                left = deadline - time.monotonic()
                if left <= 0 or not self._done_changed.wait(left):
                    raise TimeoutError(f"intake: {target - self._finished} request(s) still waiting after {timeout} s")

    def _flush(self) -> None:  # thread mode
        while True:
            with self._lock:
                batch = self._take()
                if not batch:
                    self._scheduled = False
                    return
            self._queue(batch)

    def _take(self) -> list[_Request]:  # with self._lock held
        return [self._waiting.popleft() for _ in range(min(self._batch, len(self._waiting)))]

    def _queue(self, batch: list[_Request]) -> None:
        try:
            failed = self._execute(batch)
        except Exception:  # noqa: BLE001 - the intake must keep going, and nobody may be left without an answer
            log.exception("intake: a batch of %d request(s) failed", len(batch))
            failed = [(request, INTERNAL_ERROR) for request in batch]
        to_tell = [(request, reason) for request, reason in failed if request.response_url]
        for request, reason in to_tell:  # a Slack round trip each: never on the loop's thread
            self._pool.submit(self._tell, request, reason)
        self._finish(len(batch) - len(to_tell))

    def _finish(self, count: int) -> None:
        with self._lock:
            self._finished += count
            self._done_changed.notify_all()

    def _execute(self, batch: list[_Request]) -> list[tuple[_Request, str]]:
        """Queue `batch` in one transaction; returns the requests that were not queued, with the reason."""
        failed: list[tuple[_Request, str]] = []
        spans: list[tuple[_Request, int, int]] = []
        try:
            with self.connection.pipeline() as pipe:
                for request in batch:
                    start = len(pipe.command_stack)
                    try:
                        request.add(pipe)
                    except Exception:  # noqa: BLE001 - a bug in one request must not sink its batch
                        log.exception("could not queue %s", request.what)
                        del pipe.command_stack[start:]  # its half-added commands, if any
                        failed.append((request, INTERNAL_ERROR))
                        continue
                    spans.append((request, start, len(pipe.command_stack)))
                replies = pipe.execute(raise_on_error=False) if spans else []
        except redis.RedisError:  # the transaction was not applied: none of the batch is queued
            self._mark(False)
            log.warning("Redis unreachable: %d request(s) were acked but not queued; telling the requesters",
                        len(batch))
            return [(request, REDIS_LOST) for request in batch]
        self._mark(True)
        for request, start, end in spans:
            errors = [reply for reply in replies[start:end] if isinstance(reply, Exception)]
            if errors:  # e.g. Redis out of memory: this request's commands were refused, not the whole batch's
                log.warning("Redis refused %s: %s", request.what, errors[0])
                failed.append((request, REDIS_LOST))
        return failed

    def _mark(self, up: bool) -> None:
        with self._lock:
            self._healthy, self._checked_at = up, time.monotonic()

    def _tell(self, request: _Request, reason: str) -> None:
        try:
            WebhookClient(request.response_url, timeout=5).send(
                text=f"`{request.what}` was not started: {reason}", response_type="ephemeral", replace_original=True)
        except Exception:  # noqa: BLE001 - Slack unreachable too: the log line above is all that is left
            log.exception("could not tell the requester that %s was not started", request.what)
        finally:
            self._finish(1)
