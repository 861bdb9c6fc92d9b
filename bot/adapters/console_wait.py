"""What the console is still waiting for: the answers a typed line started, until every one has arrived.

A line can start work in three places, and each is tracked where it starts rather than guessed by sleeping:
- RQ jobs (the preview, the failover, a lookup) and the jobs they enqueue in turn: `jobs.queue.observe_enqueues`
  records every job this process enqueues, except the monitor's own (sweeps, chores) which answer nobody;
- Bolt's lazy listeners (a button's follow-up: the approval card, the run): `TrackedExecutor` counts them;
- the intake's queueing right after an ack (`Intake.drain`).
A job is answered once RQ says it finished, failed, was stopped or cancelled, or is scheduled for later (a backup
window's end is not an answer the console waits for). The worker posts to Slack inside the job, so a job that is
done has printed its messages.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from bot.intake import Intake
from jobs.queue import observe_enqueues

POLL_S = 0.05
OUTSTANDING = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED}


class TrackedExecutor(ThreadPoolExecutor):
    """Bolt's listener executor, counting the follow-ups (lazy listeners) still running."""

    def __init__(self, max_workers: int, thread_name_prefix: str = "") -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self._running: set[Future[Any]] = set()
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._lock:
            future = super().submit(fn, *args, **kwargs)
            self._running.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._running.discard(future)

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._running)


@dataclass(frozen=True)
class Pending:
    job_id: str
    description: str
    status: str

    def __str__(self) -> str:
        return f"job {self.job_id} ({self.description}): still {self.status}"


class Outstanding:
    """Every answer this console session started and is still owed."""

    def __init__(self, connection: redis.Redis, intake: Intake, executor: TrackedExecutor,
                 ignore: Callable[[Job], bool]) -> None:
        self.connection, self.intake, self.executor, self._ignore = connection, intake, executor, ignore
        self._jobs: dict[str, str] = {}  # id -> description, of jobs not yet seen answered
        self._generation = 0  # bumped on every job recorded: a check that saw no change saw everything
        self._lock = threading.Lock()
        self._stop_observing = observe_enqueues(self._record)

    def close(self) -> None:
        self._stop_observing()

    def _record(self, job: Job) -> None:
        if self._ignore(job):
            return
        with self._lock:
            self._jobs[job.id] = job.description or job.func_name
            self._generation += 1

    def wait(self, timeout: float) -> list[str]:
        """Block until everything started so far has answered, or `timeout` seconds; returns what has not."""
        deadline = time.monotonic() + timeout
        while True:
            missing = self.check(max(0.0, deadline - time.monotonic()))
            if not missing or time.monotonic() >= deadline:
                return missing
            time.sleep(POLL_S)

    def check(self, intake_timeout: float = 0.0) -> list[str]:
        """What is still owed now (empty: everything answered). Listeners first: they may enqueue jobs."""
        missing: list[str] = []
        try:
            self.intake.drain(timeout=min(intake_timeout, 1.0))
        except TimeoutError:
            missing.append("a request still being queued (the intake)")
        if self.executor.running:
            missing.append(f"{self.executor.running} button follow-up(s) still running")
        with self._lock:
            generation, jobs = self._generation, dict(self._jobs)
        pending = [p for p in (self._status(job_id, what) for job_id, what in jobs.items()) if p is not None]
        with self._lock:
            for job_id in set(jobs) - {p.job_id for p in pending}:
                self._jobs.pop(job_id, None)
            changed = generation != self._generation  # a job enqueued meanwhile: not settled yet
        missing += [str(p) for p in pending]
        if changed and not missing:
            missing.append("a job enqueued just now")
        return missing

    def _status(self, job_id: str, description: str) -> Pending | None:
        try:
            job = Job.fetch(job_id, connection=self.connection, serializer=JSONSerializer)
        except NoSuchJobError:
            return None  # gone: finished with a short result TTL, or deleted by a cancel
        status = job.get_status(refresh=False)
        if status not in OUTSTANDING:
            return None
        return Pending(job_id, description, str(status.value if status else "unknown"))
