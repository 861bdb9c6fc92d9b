"""What the console waits for after a line: the jobs it started and the jobs those enqueue in turn, a button's
follow-ups still running, never the monitor's own work or a job scheduled for later; real Redis, real RQ."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import redis
from rq import Queue, get_current_job
from rq.job import Job
from rq.serializers import JSONSerializer

from bot.adapters.console_wait import Outstanding, TrackedExecutor
from bot.intake import Intake
from jobs.queue import enqueue
from tests.support.fixtures_redis import TEST_QUEUE
from tests.support.workers import work_dry

LATER_QUEUE = f"{TEST_QUEUE}-later"


def parent_job() -> str:
    """Starts a follow-up on another queue, as a preview's job starts the run after an approval."""
    job = get_current_job()
    assert job is not None
    later = Queue(LATER_QUEUE, connection=job.connection, serializer=JSONSerializer)
    enqueue(later, child_job, {}, description="the follow-up")
    return "parent done"


def child_job() -> str:
    return "child done"


def _waits(conn: redis.Redis, executor: TrackedExecutor) -> Outstanding:
    return Outstanding(conn, Intake(conn), executor, ignore=lambda job: (job.description or "").startswith("sweep"))


def test_waits_for_a_job_and_the_follow_up_it_enqueued(redis_conn: redis.Redis) -> None:
    queue = Queue(TEST_QUEUE, connection=redis_conn, serializer=JSONSerializer)
    executor = TrackedExecutor(2)
    waits = _waits(redis_conn, executor)
    try:
        job = enqueue(queue, parent_job, {}, description="the request")
        assert waits.check() == [f"job {job.id} (the request): still queued"]
        work_dry(queue, redis_conn)
        [missing] = waits.check()
        assert "(the follow-up): still queued" in missing  # the parent answered; its follow-up has not yet
        work_dry(LATER_QUEUE, redis_conn)
        assert waits.wait(30) == []
    finally:
        waits.close()
        executor.shutdown()


def test_monitor_work_and_jobs_scheduled_for_later_are_not_waited_for(redis_conn: redis.Redis) -> None:
    queue = Queue(TEST_QUEUE, connection=redis_conn, serializer=JSONSerializer)
    executor = TrackedExecutor(2)
    waits = _waits(redis_conn, executor)
    try:
        enqueue(queue, child_job, {}, description="sweep of hv-a1")
        later = enqueue(queue, child_job, {}, description="end of a backup window",
                        at=datetime.now(UTC) + timedelta(hours=1))
        assert Job.fetch(later.id, connection=redis_conn, serializer=JSONSerializer).get_status() == "scheduled"
        assert waits.check() == []
    finally:
        waits.close()
        executor.shutdown()


def test_waits_for_a_buttons_follow_up_and_names_it_when_the_limit_passes(redis_conn: redis.Redis) -> None:
    executor = TrackedExecutor(2)
    waits = _waits(redis_conn, executor)
    release = threading.Event()
    try:
        executor.submit(release.wait)
        assert waits.wait(0.2) == ["1 button follow-up(s) still running"]
        release.set()
        assert waits.wait(30) == []
    finally:
        release.set()
        waits.close()
        executor.shutdown()


def test_a_closed_tracker_no_longer_records_jobs(redis_conn: redis.Redis) -> None:
    queue = Queue(TEST_QUEUE, connection=redis_conn, serializer=JSONSerializer)
    executor = TrackedExecutor(1)
    waits = _waits(redis_conn, executor)
    waits.close()
    enqueue(queue, child_job, {}, description="after close")
    assert waits.check() == []
    executor.shutdown()
