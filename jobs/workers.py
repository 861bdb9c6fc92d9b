"""RQ workers that register themselves again when Redis forgets them (and, for workers in a thread of a longer-lived
process, a command listener their teardown can join: `PolledCommands`).

RQ registers a worker once, at start (`register_birth`: its hash plus membership of `rq:workers` and
`rq:workers:<queue>`). Its heartbeat afterwards only refreshes `last_heartbeat` and the TTL of the hash. After Redis
restarts without its data the worker keeps working (RQ retries its dequeue), but it is in no registry, so
`rq info`, `Worker.all()` and hvbot's checks see no worker at all. `ReRegistering.ensure_registered()` puts it back
(the hash with its birth, host and state, and both sets); `RegistrationKeeper` calls it every few seconds from a
thread, because an idle worker only heartbeats once per dequeue timeout (minutes), and the heartbeat override
calls it too. A lock and a flag keep it from re-registering a worker that has registered its death.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any

import redis
from rq import Queue, SimpleWorker, Worker
from rq import worker_registration as registration
from rq.job import Job, JobStatus
from rq.utils import now
from rq.worker import BaseWorker

from jobs.backoff import backoff_s
from jobs.periodic import Periodic
from jobs.metrics import JobOutcome, observe_job

log = logging.getLogger("hvbot.worker")


class ReRegistering(BaseWorker):
    """Mixin for an RQ worker class: `ensure_registered()` restores a registration that Redis lost."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._registration_lock = threading.Lock()
        self._dead = False

    def ensure_registered(self) -> bool:
        """Register again if Redis lost this worker; True when it had to."""
        with self._registration_lock:
            if self._dead or self.birth_date is None or self.last_heartbeat is None:
                return False  # not started yet, or already gone: nothing to restore
            if self.connection.sismember(self.redis_workers_keys, self.key):
                return False
            with self.connection.pipeline() as pipe:
                pipe.hset(self.key, mapping={**self.serialize(), "state": str(self.get_state())})
                registration.register(self, pipe)
                pipe.expire(self.key, self.worker_ttl + 60)
                pipe.execute()
        log.warning("worker %s was missing from rq:workers (Redis lost its data?): registered again", self.name)
        return True

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        super().heartbeat(timeout, pipeline)
        # Not inside a caller's pipeline (no reads there) nor in a forked work horse (the keeper thread's lock may
        # have been copied held): the keeper thread of the worker process covers both.
        if pipeline is None and not self.is_horse:
            try:
                self.ensure_registered()
            except redis.RedisError as exc:  # the heartbeat itself went through; the keeper tries again
                log.debug("worker registration check failed: %s", exc)

    def register_death(self) -> None:
        with self._registration_lock:
            self._dead = True
            super().register_death()


class Timed(BaseWorker):
    """Mixin: every job's run counted and timed by kind and outcome (in the work horse, where the job runs; in the
    forking worker itself when the horse died, or was killed on a stop-job command, before it could)."""

    def perform_job(self, job: Job, queue: Queue) -> bool:
        started, ok = time.monotonic(), False
        try:
            ok = super().perform_job(job, queue)
            return ok
        finally:
            observe_job(job.func_name, _performed_outcome(job, ok), time.monotonic() - started)

    def handle_work_horse_killed(self, job: Job, retpid: int | None, ret_val: int | None, rusage: Any) -> None:
        """The horse ended before finishing the job (SIGKILL, OOM, a crash, RQ's own kill past the timeout), so it
        never counted it: the worker does. RQ calls this only for a job the horse left neither finished nor failed
        (the horse sets that status before it counts)."""
        observe_job(job.func_name, "killed", _horse_seconds(job, job.ended_at))
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)

    def handle_job_failure(self, job: Job, queue: Queue, started_job_registry: Any = None,
                           exc_string: str = "") -> None:
        """A stop-job command (`/hyperv cancel`) makes a forking worker SIGKILL the horse and come here, without
        `handle_work_horse_killed`: the worker counts the job as stopped, once, before RQ marks it so."""
        if self._killed_on_stop(job):
            observe_job(job.func_name, "stopped", _horse_seconds(job, now()))
        super().handle_job_failure(job, queue, started_job_registry=started_job_registry, exc_string=exc_string)

    def _killed_on_stop(self, job: Job) -> bool:
        # Only a forking worker's parent kills horses (a simple worker's job runs on and counts itself). A horse that
        # got as far as finishing or failing the job has counted it (it sets that status first).
        if not isinstance(self, Worker) or self.is_horse or self._stopped_job_id != job.id:
            return False
        try:
            return job.get_status(refresh=True) not in (JobStatus.FINISHED, JobStatus.FAILED)
        except redis.RedisError:  # RQ's own handling must go on; a horse killed on a stop had most likely not counted
            return True


def _performed_outcome(job: Job, ok: bool) -> JobOutcome:
    """A job that failed after a stop-job command is marked STOPPED by RQ (a simple worker does not kill it)."""
    if ok:
        return "ok"
    return "stopped" if job.get_status(refresh=False) == JobStatus.STOPPED else "failed"


def _horse_seconds(job: Job, ended_at: datetime | None) -> float | None:
    """From the fork to the horse's end, as the worker saw them (RQ sets `started_at` when it forks the horse)."""
    if job.started_at is None or ended_at is None:
        return None
    return max(0.0, (ended_at - job.started_at).total_seconds())


class PolledCommands(BaseWorker):
    """Mixin for an RQ worker that runs in a thread of a longer-lived process (the demo, tests): its command
    listener (stop-job, shutdown) looks at its stop flag every COMMAND_POLL_S, so the worker's teardown joins it.

    Why: RQ's listener waits up to 60 s per read, and teardown unsubscribes *before* it stops that thread; the
    thread usually sees the UNSUBSCRIBE reply first and goes back to wait, teardown's join(timeout=1) gives up, and
    the thread is left reading a connection that is closed later (an exception in a stray thread).
    """

    COMMAND_POLL_S = 0.05

    def subscribe(self) -> None:
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(sleep_time=self.COMMAND_POLL_S, daemon=True,
                                                       exception_handler=self._pubsub_exception_handler)

    def unsubscribe(self) -> None:
        thread = self.pubsub_thread
        super().unsubscribe()
        if thread is not None:
            thread.join()  # bounded: the listener sees its stop flag within COMMAND_POLL_S


class HvbotWorker(Timed, ReRegistering, Worker):
    """RQ's forking worker, re-registering after a Redis restart, timing its jobs."""


class HvbotSimpleWorker(Timed, ReRegistering, SimpleWorker):
    """RQ's in-process worker, re-registering after a Redis restart, timing its jobs."""


class RegistrationKeeper(Periodic):
    """Every `period_s`, a daemon thread checks that the worker is still registered and restores it if not."""

    def __init__(self, worker: ReRegistering, period_s: float) -> None:
        self._worker, self._period_s = worker, period_s
        self._failures = 0
        super().__init__("hvbot-worker-registration", period_s)

    def round(self) -> float:
        try:
            self._worker.ensure_registered()
        except redis.RedisError as exc:  # Redis still down: try again later, less often
            self._failures += 1
            log.debug("worker registration check failed: %s", exc)
            return backoff_s(self._failures, self._period_s, max(self._period_s, 60.0))
        self._failures = 0
        return self._period_s
