"""A worker SIGKILLed mid-job (its work horse too): the request's message says so within 60 s. A work horse
SIGKILLed alone (OOM, `kill -9`): its worker counts the job as killed in /metrics.

The detection period is configurable (HVBOT_ABANDONED_CHECK_SECONDS); here 0.5 s, so the test is quick.
No sleeps: the tests wait on the fake Slack's recorded calls, Redis or /metrics with a deadline.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from bot.adapters.fake_slack import FakeSlack
from jobs.inventory.tasks import run_lookup
from jobs.ports import ReplyTo
from jobs.queue import enqueue
from tests.support.fixtures_redis import TEST_QUEUE, test_redis_url, wait_until
from tests.support.fixtures_slack import (
    BOT_TOKEN,
    SIGNING_SECRET,
    HvbotProcess,
    free_port,
    post,
    signed_headers,
    slash_body,
)
from tests.support.scrape import Scrape, job_counted


def test_killed_worker_is_reported_within_60_s(clean_lab, lab_inventory_path: Path, fake_slack: FakeSlack,
                                                redis_conn: redis.Redis) -> None:
    clean_lab.control("hv-a1", "hung", {"on": True})  # the job waits on hv-a1 until we kill its worker
    port = free_port()
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake_slack.api_url,
           "REDIS_URL": test_redis_url(), "HVBOT_INVENTORY": str(lab_inventory_path), "HVBOT_LOG_JSON": "false",
           "HVBOT_QUEUE": TEST_QUEUE,
           "HVBOT_ABANDONED_CHECK_SECONDS": "0.5", "HVBOT_DEADLINE_S": "120",
           "HVBOT_CHANNEL_POST_INTERVAL_SECONDS": "0"}
    server = HvbotProcess(["serve", "--port", str(port), "--host", "127.0.0.1"], env, "listening on")
    worker = HvbotProcess(["worker", "--name", f"doomed-{port}"], env)
    try:
        server.wait_ready()
        body = slash_body("vms --here")
        status, ack = post(port, body, signed_headers(body))
        assert status == 200
        job_id = re.search(r"job (hv[0-9a-f]+)", ack).group(1)  # type: ignore[union-attr]
        fake_slack.wait_for(lambda calls: [c for c in calls if c.method == "chat.postMessage"
                                           and f"job {job_id}" in json.dumps(c.args)], timeout=30)
        # the worker stores the message's ts right after Slack answers; kill it only once it has
        wait_until(lambda: redis_conn.exists(f"hvbot:msg:{job_id}"), 30, "message ts stored")
        horse = int(Job.fetch(job_id, connection=redis_conn, serializer=JSONSerializer).meta["pid"])
        os.killpg(worker.proc.pid, signal.SIGKILL)  # the worker and its scheduler process, as if the machine died
        os.kill(horse, signal.SIGKILL)  # the work horse runs in a session of its own
        killed_at = time.monotonic()
        update = fake_slack.wait_for(lambda calls: next((c for c in calls if c.method == "chat.update"
                                                         and f"job {job_id}" in json.dumps(c.args)), None), 60)
        assert time.monotonic() - killed_at < 60
        assert "stopped unexpectedly" in update.args["text"]
        assert len([c for c in fake_slack.calls_to("chat.update") if f"job {job_id}" in json.dumps(c.args)]) == 1
    finally:
        server.stop()
        worker.stop()
        clean_lab.control("hv-a1", "hung", {"on": False})



def test_a_killed_work_horse_is_counted_by_its_worker(clean_lab, lab_inventory_path: Path, fake_slack: FakeSlack,
                                                     redis_conn: redis.Redis) -> None:
    """The horse's own count dies with it; the forking worker counts the job (outcome `killed`, with its duration),
    and its /metrics, which adds up every process's multiprocess files, exports it."""
    clean_lab.control("hv-a1", "hung", {"on": True})  # the job waits on hv-a1 until we kill its horse
    port = free_port()
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": fake_slack.api_url, "REDIS_URL": test_redis_url(),
           "HVBOT_INVENTORY": str(lab_inventory_path), "HVBOT_LOG_JSON": "false", "HVBOT_QUEUE": TEST_QUEUE,
           "HVBOT_DEADLINE_S": "120", "HVBOT_METRICS_BIND": "127.0.0.1", "HVBOT_METRICS_PORT": str(port)}
    worker = HvbotProcess(["worker", "--name", f"horse-killed-{port}"], env)
    try:
        queue = Queue(TEST_QUEUE, connection=redis_conn, serializer=JSONSerializer)
        reply = ReplyTo(channel="C100", user="U100", command="vms --host hv-a1", here=True).to_dict()
        job = enqueue(queue, run_lookup, {"verb": "vms", "args": [], "host": "hv-a1", "reply": reply},
                      description="vms on a hung host (killed horse test)")
        horse = wait_until(lambda: job.get_meta(refresh=True).get("pid"), 60, "the work horse's pid")
        os.kill(int(horse), signal.SIGKILL)  # as the OOM killer would: the worker itself lives on
        scraped = wait_until(lambda: job_counted(port, "run_lookup", "killed"), 60,
                             "the killed job in the worker's /metrics")
        assert isinstance(scraped, Scrape)
        assert scraped.value("hvbot_jobs_total", kind="run_lookup", outcome="killed") == 1
        assert scraped.value("hvbot_job_duration_seconds_count", kind="run_lookup", outcome="killed") == 1
        assert 0 < (scraped.value("hvbot_job_duration_seconds_sum", kind="run_lookup", outcome="killed") or 0)
        assert scraped.value("hvbot_jobs_total", kind="run_lookup", outcome="failed") is None  # counted once
        wait_until(lambda: job.get_status(refresh=True) == JobStatus.FAILED, 30, "RQ's own handling of the job")
    finally:
        worker.stop()
        clean_lab.control("hv-a1", "hung", {"on": False})
    assert [line for line in worker.lines if "Traceback" in line] == [], "".join(worker.lines[-40:])
