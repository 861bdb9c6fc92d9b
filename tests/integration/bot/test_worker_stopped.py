"""A running job stopped by `/hyperv cancel`: RQ's stop-job command makes the forking worker SIGKILL the work horse,
so the horse never counts the job; its worker does, once, as `stopped` (not `failed`, not `killed`), with its
duration, and its /metrics exports it. A simple worker has no horse to kill: its job runs on, and when it then fails
RQ marks it STOPPED, and so does the count.

No sleeps: the test waits on Redis and on the worker's /metrics with a deadline.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from pathlib import Path

import redis
from prometheus_client import REGISTRY
from rq import Queue, get_current_job
from rq.command import send_stop_job_command
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from slack_bolt import App, BoltRequest

from bot.adapters.fake_slack import FakeSlack
from bot.app import build_app
from bot.runtime import build_runtime
from bot.settings import Settings
from tests.support.fixtures_redis import TEST_QUEUE, test_redis_url, wait_until
from tests.support.fixtures_slack import (
    BOT_TOKEN,
    SIGNING_SECRET,
    HvbotProcess,
    free_port,
    signed_headers,
    slash_body,
)
from tests.support.scrape import Scrape, job_counted
from tests.support.workers import BurstWorker


def _say(app: App, text: str) -> str:
    body = slash_body(text)
    response = app.dispatch(BoltRequest(body=body, headers={k.lower(): [v] for k, v in signed_headers(body).items()}))
    assert response.status == 200
    data = json.loads(response.body)
    return str(data["text"]) + "\n" + json.dumps(data.get("blocks", []))  # the job id is in a context block



def test_a_job_cancelled_while_it_runs_is_counted_stopped_by_its_worker(
        clean_lab, lab_inventory_path: Path, fake_slack: FakeSlack, redis_conn: redis.Redis) -> None:
    clean_lab.control("hv-a1", "hung", {"on": True})  # the job waits on hv-a1 until it is cancelled
    port = free_port()
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": fake_slack.api_url, "REDIS_URL": test_redis_url(),
           "HVBOT_INVENTORY": str(lab_inventory_path), "HVBOT_LOG_JSON": "false", "HVBOT_QUEUE": TEST_QUEUE,
           "HVBOT_DEADLINE_S": "120", "HVBOT_METRICS_BIND": "127.0.0.1", "HVBOT_METRICS_PORT": str(port)}
    worker = HvbotProcess(["worker", "--name", f"horse-stopped-{port}"], env)
    settings = Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                        slack_api_url=fake_slack.api_url, queue=TEST_QUEUE, channel_post_interval_seconds=0)
    app = build_app(settings, runtime=build_runtime(settings, connection=redis_conn))
    try:
        ack = _say(app, "vms --host hv-a1 --here")
        job_id = re.search(r"job (hv[0-9a-f]+)", ack).group(1)  # type: ignore[union-attr]
        job = wait_until(lambda: Job.fetch(job_id, connection=redis_conn, serializer=JSONSerializer)
                         if redis_conn.exists(f"rq:job:{job_id}") else None, 30, "the lookup queued")
        assert isinstance(job, Job)
        wait_until(lambda: job.get_meta(refresh=True).get("pid"), 60, "the work horse running the job")
        assert "asked the worker to stop it" in _say(app, f"cancel {job_id}")
        scraped = wait_until(lambda: job_counted(port, "run_lookup", "stopped"), 60,
                             "the stopped job in the worker's /metrics")
        assert isinstance(scraped, Scrape)
        assert scraped.value("hvbot_jobs_total", kind="run_lookup", outcome="stopped") == 1
        assert scraped.value("hvbot_job_duration_seconds_count", kind="run_lookup", outcome="stopped") == 1
        assert 0 < (scraped.value("hvbot_job_duration_seconds_sum", kind="run_lookup", outcome="stopped") or 0)
        for other in ("failed", "killed", "ok"):  # counted once, by the worker alone
            assert scraped.value("hvbot_jobs_total", kind="run_lookup", outcome=other) is None, other
        assert job.get_status(refresh=True) == JobStatus.STOPPED
    finally:
        worker.stop()
        clean_lab.control("hv-a1", "hung", {"on": False})
    assert [line for line in worker.lines if "Traceback" in line] == [], "".join(worker.lines[-40:])


def fails_when_released(release_key: str) -> None:
    """Runs until the test releases it, then fails on its own (as a job whose host call fails)."""
    job = get_current_job()
    assert job is not None
    job.connection.blpop([release_key], timeout=30)
    raise RuntimeError("failed after the stop request")


def _jobs_counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("hvbot_jobs_total", {"kind": "fails_when_released", "outcome": outcome}) or 0.0


def test_a_simple_workers_job_that_fails_after_a_stop_request_is_counted_stopped_once(
        redis_conn: redis.Redis) -> None:
    queue = Queue(TEST_QUEUE, connection=redis_conn, serializer=JSONSerializer)
    release = f"hvbot-test:release:{uuid.uuid4().hex}"
    job = queue.enqueue(fails_when_released, release)
    worker = BurstWorker([queue], connection=redis_conn, serializer=JSONSerializer)
    before = {outcome: _jobs_counted(outcome) for outcome in ("stopped", "failed")}

    def stop_then_release() -> None:
        try:
            wait_until(lambda: Job.fetch(job.id, connection=redis_conn, serializer=JSONSerializer).worker_name,
                       30, "the job running")
            send_stop_job_command(redis_conn, job.id, serializer=JSONSerializer)
            wait_until(lambda: worker._stopped_job_id == job.id, 30, "the worker taking the stop request")
        finally:
            redis_conn.rpush(release, "go")

    helper = threading.Thread(target=stop_then_release)
    helper.start()
    worker.work(burst=True)  # here, in the main thread, where RQ may install its signal handlers
    helper.join()
    assert job.get_status(refresh=True) == JobStatus.STOPPED
    assert _jobs_counted("stopped") - before["stopped"] == 1
    assert _jobs_counted("failed") - before["failed"] == 0
