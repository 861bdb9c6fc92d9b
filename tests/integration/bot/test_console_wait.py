"""What the console waits for after a line: the jobs it started and the jobs those enqueue in turn, a button's
follow-ups still running, never the monitor's own work or a job scheduled for later; real Redis, real RQ."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
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


@pytest.fixture
def waits(redis_conn: redis.Redis) -> Iterator[Outstanding]:
    executor = TrackedExecutor(2)
    tracker = Outstanding(redis_conn, Intake(redis_conn), executor,
                          ignore=lambda job: (job.description or "").startswith("sweep"))
    yield tracker
    tracker.close()
    executor.shutdown()


def _queue(conn: redis.Redis) -> Queue:
    return Queue(TEST_QUEUE, connection=conn, serializer=JSONSerializer)


def test_waits_for_a_job_and_the_follow_up_it_enqueued(redis_conn: redis.Redis, waits: Outstanding) -> None:
    job = enqueue(_queue(redis_conn), parent_job, {}, description="the request")
    assert waits.check() == [f"job {job.id} (the request): still queued"]
    work_dry(TEST_QUEUE, redis_conn)
    [missing] = waits.check()
    assert "(the follow-up): still queued" in missing  # the parent answered; its follow-up has not yet
    work_dry(LATER_QUEUE, redis_conn)
    assert waits.wait(30) == []


def test_monitor_work_and_jobs_scheduled_for_later_are_not_waited_for(redis_conn: redis.Redis,
                                                                      waits: Outstanding) -> None:
    enqueue(_queue(redis_conn), child_job, {}, description="sweep of hv-a1")
    later = enqueue(_queue(redis_conn), child_job, {}, description="end of a backup window",
                    at=datetime.now(UTC) + timedelta(hours=1))
    assert Job.fetch(later.id, connection=redis_conn, serializer=JSONSerializer).get_status() == "scheduled"
    assert waits.check() == []


def test_waits_for_a_buttons_follow_up_and_names_it_when_the_limit_passes(waits: Outstanding) -> None:
    release = threading.Event()
    try:
        waits.executor.submit(release.wait)
        assert waits.wait(0.2) == ["1 button follow-up(s) still running"]
        release.set()
        assert waits.wait(30) == []
    finally:
        release.set()


def test_a_closed_tracker_no_longer_records_jobs(redis_conn: redis.Redis, waits: Outstanding) -> None:
    waits.close()
    enqueue(_queue(redis_conn), child_job, {}, description="after close")
    assert waits.check() == []
