"""Liveness of jobs: heartbeats, the one final message per request, and reporting jobs whose worker died.

While a job runs it refreshes `ALIVE_KEY` from the process that runs it, so a detector (`sweep_abandoned`,
run by the `abandoned_jobs_chore` of housekeeping and by the chat server's watcher) notices a killed worker
within a few heartbeats, not RQ's 60 s+ TTLs. RQ's failure and stopped callbacks are here too.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import redis
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from jobs import ports as reporting
from jobs.keys import ALIVE_KEY, FINAL_KEY
from jobs.ports import ReplyTo

log = logging.getLogger("hvbot.jobs")

FINAL_TTL = 7 * 86400
# job.meta flag of jobs that report their own death (a recovery run shows which VMs were done): the generic
# "nothing was changed" message and failure callback leave them alone
OWN_DEATH_META = "reports_own_death"
ABANDONED_MESSAGE = (
    "The worker running this request stopped unexpectedly (killed or lost), so there is no result. "
    "Nothing was changed by hvbot; please run the command again."
)


def claim_final(connection: redis.Redis, job_id: str) -> bool:
    """True for exactly one caller per job: result, failure callback and abandoned-job detector race here."""
    return bool(connection.set(FINAL_KEY.format(job_id), b"1", nx=True, ex=FINAL_TTL))


@contextmanager
def heartbeat(connection: redis.Redis, job_id: str, interval: float) -> Iterator[None]:
    key = ALIVE_KEY.format(job_id)
    ttl_ms = max(int(interval * 3000), 1000)
    stop = threading.Event()
    connection.set(key, os.getpid(), px=ttl_ms)

    def beat() -> None:
        while not stop.wait(interval):
            try:
                connection.set(key, os.getpid(), px=ttl_ms)
            except redis.RedisError:
                log.warning("heartbeat write failed", extra={"job_id": job_id})

    thread = threading.Thread(target=beat, name=f"hvbot-heartbeat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval + 1)
        connection.delete(key)


def clear_message(exc: Exception) -> str:
    """What the requester reads when a job failed: jobs.hyperv errors and our RuntimeErrors are one clear,
    secret-free sentence; anything else is a bug, whose details stay in the worker log."""
    if type(exc).__module__.startswith("jobs.") or isinstance(exc, RuntimeError):
        return str(exc)
    return f"Internal error ({type(exc).__name__}); the details are in the worker log."


def reply_of(job: Job) -> ReplyTo | None:
    data = (job.kwargs or {}).get("reply")
    return ReplyTo.from_dict(data) if isinstance(data, dict) else None


def on_job_failed(job: Job, connection: redis.Redis, exc_type: Any, exc_value: Any, tb: Any) -> None:
    """RQ failure callback: timeouts, horse deaths, abandoned jobs. Re-reads status first (rq ≤ 2.12 bug, B7)."""
    if job.get_status(refresh=True) == JobStatus.FINISHED or _reports_own_death(job):
        return
    target = reply_of(job)
    if target is not None and claim_final(connection, job.id):
        reason = "took too long and was stopped" if "Timeout" in getattr(exc_type, "__name__", "") else "failed"
        reporting.current().failed(job.id, target, f"The request {reason}; please try again.")


def _reports_own_death(job: Job) -> bool:
    return bool((job.get_meta(refresh=True) if job.id else job.meta or {}).get(OWN_DEATH_META))


def on_job_stopped(job: Job, connection: redis.Redis) -> None:
    target = reply_of(job)
    if target is not None and claim_final(connection, job.id):
        reporting.current().failed(job.id, target, "Cancelled while running.")


def abandoned_jobs(connection: redis.Redis, queue_name: str, grace_seconds: float) -> list[Job]:
    """Started jobs whose executing process stopped heart-beating (SIGKILL, OOM, host loss)."""
    registry = StartedJobRegistry(queue_name, connection=connection, serializer=JSONSerializer)
    found = []
    now = time.time()
    for job_id in registry.get_job_ids(cleanup=False):
        if connection.exists(ALIVE_KEY.format(job_id)) or connection.exists(FINAL_KEY.format(job_id)):
            continue
        job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer) if Job.exists(
            job_id, connection) else None
        if job is None or job.get_status(refresh=True) != JobStatus.STARTED or job.started_at is None:
            continue
        if (job.meta or {}).get(OWN_DEATH_META):
            continue
        if now - job.started_at.timestamp() >= grace_seconds:
            found.append(job)
    return found


def sweep_abandoned(
    connection: redis.Redis, queue_name: str, grace_seconds: float, reporter: reporting.Reporter | None = None
) -> int:
    """Report each abandoned job once; returns how many were reported."""
    reporter = reporter or reporting.current()
    reported = 0
    for job in abandoned_jobs(connection, queue_name, grace_seconds):
        target = reply_of(job)
        if target is not None and claim_final(connection, job.id):
            reporter.failed(job.id, target, ABANDONED_MESSAGE)
            reported += 1
    return reported


class AbandonedJobSettings(BaseSettings):
    """What the abandoned-job chore needs: the queue and the detector's period (HVBOT_QUEUE, ...)."""

    model_config = SettingsConfigDict(env_prefix="HVBOT_", extra="ignore", hide_input_in_errors=True)
    queue: str = "hvbot"
    abandoned_check_seconds: float = Field(default=10.0, gt=0)


def abandoned_jobs_chore(connection: redis.Redis, now: datetime) -> int:
    """Housekeeping: report started jobs whose worker died (`sweep_abandoned`), once each."""
    if isinstance(reporting.current(), reporting.NoReporter):
        return 0  # nobody to tell: leave the job to a process that can report it (claiming would silence it)
    s = AbandonedJobSettings()
    return sweep_abandoned(connection, s.queue, grace_seconds=2 * s.abandoned_check_seconds,
                           reporter=reporting.current())
