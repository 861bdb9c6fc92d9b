"""Jobs queued or scheduled by the previous release still run: RQ stores each job's function and callbacks as
dotted paths in Redis, and those paths name the modules as they were before the move into feature packages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from rq import Queue
from rq.job import Callback, JobStatus
from rq.serializers import JSONSerializer
from rq.utils import import_attribute

from jobs import ports
from jobs.backup import export_tasks
from jobs.backup import tasks as backup_tasks
from jobs.failover import tasks as failover_tasks
from jobs.inventory.tasks import run_lookup
from jobs.liveness import on_job_failed, on_job_stopped
from jobs.monitor.actions import run_resume
from jobs.monitor.sweep import run_host_sweep
from jobs.ports import ReplyTo
from jobs.teaming import run_set_teaming
from tests.support.fixtures_redis import TEST_QUEUE
from tests.support.workers import work_dry

OLD_PATHS: dict[str, Callable[..., Any]] = {  # every function the previous release enqueued or used as a Callback
    "jobs.tasks.run_lookup": run_lookup,
    "jobs.tasks.on_job_failed": on_job_failed,
    "jobs.tasks.on_job_stopped": on_job_stopped,
    "jobs.sweep.run_host_sweep": run_host_sweep,
    "jobs.replica_actions.run_resume": run_resume,
    "jobs.teaming_set.run_set_teaming": run_set_teaming,
    "jobs.backup_jobs.run_check": backup_tasks.run_check,
    "jobs.backup_jobs.run_window_start": backup_tasks.run_window_start,
    "jobs.backup_jobs.run_window_end": backup_tasks.run_window_end,
    "jobs.backup_jobs.run_checkpoint": backup_tasks.run_checkpoint,
    "jobs.backup_jobs.run_alert_action": backup_tasks.run_alert_action,
    "jobs.export_jobs.run_export": export_tasks.run_export,
    "jobs.failover_task.run_preview": failover_tasks.run_preview,
    "jobs.failover_task.run_failover": failover_tasks.run_failover,
}


@pytest.mark.parametrize("old_path", sorted(OLD_PATHS))
def test_old_path_resolves_to_the_moved_function(old_path: str) -> None:
    assert import_attribute(old_path) is OLD_PATHS[old_path]


class Recorder(ports.NoReporter):
    def __init__(self) -> None:
        self.failures: list[tuple[str, str]] = []

    def failed(self, job_id: str, reply: ReplyTo, message: str) -> None:
        self.failures.append((job_id, message))


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    previous, installed = ports.current(), Recorder()
    ports.install(installed)
    yield installed
    ports.install(previous)


def _run_due(queue: Queue) -> None:
    """Move scheduled jobs to the queue (as RQ's scheduler does when they are due), then work them off."""
    for job_id in queue.scheduled_job_registry.get_job_ids():
        job = queue.fetch_job(job_id)
        assert job is not None
        queue.scheduled_job_registry.remove(job)
        queue.enqueue_job(job)
    work_dry(queue, queue.connection)


def test_a_window_end_scheduled_by_the_old_release_runs(redis_conn: redis.Redis, recorder: Recorder) -> None:
    """The old release scheduled a window's end with enqueue_at("jobs.backup_jobs.run_window_end", ...)."""
    queue = Queue(TEST_QUEUE, connection=redis_conn, serializer=JSONSerializer)
    reply = ReplyTo("C1", "U1", "backup-window fw01 2h", here=True).to_dict()
    job = queue.enqueue_at(
        datetime.now(UTC) + timedelta(hours=2), "jobs.backup_jobs.run_window_end",
        kwargs={"vm": "fw01", "key": "bwold", "reply": reply, "user": "U1", "scheduled": True,
                "heartbeat_seconds": 1.0},
        job_id="bwold-end", on_failure=Callback("jobs.tasks.on_job_failed"), description="run_window_end fw01")
    _run_due(queue)
    assert job.get_status(refresh=True) == JobStatus.FINISHED
    assert job.return_value() == {"ok": True, "resumed": False}  # no open window: ended early, nothing to say
    assert recorder.failures == []


def test_the_old_failure_callback_path_reports_a_failed_job(redis_conn: redis.Redis, recorder: Recorder) -> None:
    queue = Queue(TEST_QUEUE, connection=redis_conn, serializer=JSONSerializer)
    reply = ReplyTo("C1", "U1", "backup-window fw01 end", here=True).to_dict()
    job = queue.enqueue("jobs.backup_jobs.run_window_end", kwargs={"vm": "fw01", "key": "bwold2", "reply": reply},
                        job_id="bwold2", on_failure=Callback("jobs.tasks.on_job_failed"), description="broken")
    _run_due(queue)  # `user` is missing: the call fails before the job can claim its final message
    assert job.get_status(refresh=True) == JobStatus.FAILED
    assert recorder.failures == [("bwold2", "The request failed; please try again.")]
