"""Three `hvbot worker` processes with different names behind one `hvbot serve`, as on three machines sharing
one Redis: three requests are spread one per worker, one worker is SIGKILLed mid-job (with its work horse, as if
its machine died), its job is reported in Slack as stopped, and the other two workers finish theirs untouched.

A hung lab host holds every job in flight, so the spread is certain: a worker busy with one job cannot take a
second. No sleeps: every wait has a condition and a deadline.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import redis
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from bot.adapters.fake_slack import Call, FakeSlack
from tests.support.fixtures_redis import test_redis_url, wait_until
from tests.support.fixtures_slack import (
    BOT_TOKEN,
    SIGNING_SECRET,
    HvbotProcess,
    free_port,
    post,
    signed_headers,
    slash_body,
)

QUEUE = "hvbot-many-workers-test"
USERS = ("U0W1", "U0W2", "U0W3")


def _updates(slack: FakeSlack, job_id: str) -> list[Call]:
    return [c for c in slack.calls_to("chat.update") if f"job {job_id}" in json.dumps(c.args)]


def _fetch(conn: redis.Redis, job_id: str) -> Job:
    return Job.fetch(job_id, connection=conn, serializer=JSONSerializer)


def test_three_workers_share_the_queue_and_one_killed_mid_job_is_reported(
        clean_lab, lab_inventory_path: Path, fake_slack: FakeSlack, redis_conn: redis.Redis) -> None:
    clean_lab.control("hv-a1", "hung", {"on": True})  # every `vms --here` waits on hv-a1 until released
    port = free_port()
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake_slack.api_url,
           "REDIS_URL": test_redis_url(), "HVBOT_INVENTORY": str(lab_inventory_path), "HVBOT_LOG_JSON": "false",
           "HVBOT_QUEUE": QUEUE, "HVBOT_ABANDONED_CHECK_SECONDS": "0.5", "HVBOT_DEADLINE_S": "120",
           "HVBOT_CHANNEL_POST_INTERVAL_SECONDS": "0"}
    server = HvbotProcess(["serve", "--port", str(port), "--host", "127.0.0.1"], env, "listening on")
    names = [f"machine-{n}-{port}" for n in ("a", "b", "c")]
    workers = {name: HvbotProcess(["worker", "--name", name], env) for name in names}
    try:
        server.wait_ready()
        wait_until(lambda: all(redis_conn.sismember(f"rq:workers:{QUEUE}", f"rq:worker:{n}") for n in names), 60,
                   "three workers registered for the queue")
        job_ids = []
        for user in USERS:
            body = slash_body("vms --here", user=user)
            status, ack = post(port, body, signed_headers(body))
            assert status == 200, ack
            job_ids.append(re.search(r"job (hv[0-9a-f]+)", ack).group(1))  # type: ignore[union-attr]
        started = StartedJobRegistry(QUEUE, connection=redis_conn)
        wait_until(lambda: len(started.get_job_ids()) == 3, 60, "all three jobs running at once")
        wait_until(lambda: all(redis_conn.exists(f"hvbot:msg:{j}") for j in job_ids), 30, "message ts stored")
        ran_on = {j: _fetch(redis_conn, j).worker_name for j in job_ids}
        assert sorted(ran_on.values()) == sorted(names), f"one job per worker: {ran_on}"

        doomed_job = job_ids[0]
        doomed = workers[str(ran_on[doomed_job])]
        horse = int(_fetch(redis_conn, doomed_job).meta["pid"])
        os.killpg(doomed.proc.pid, signal.SIGKILL)  # the worker and its scheduler process: its machine died
        os.kill(horse, signal.SIGKILL)  # the work horse runs in a session of its own
        update = fake_slack.wait_for(lambda calls: next(iter(_updates(fake_slack, doomed_job)), None), 120)
        assert "stopped unexpectedly" in update.args["text"]

        clean_lab.control("hv-a1", "hung", {"on": False})
        survivors = job_ids[1:]
        wait_until(lambda: all(_fetch(redis_conn, j).get_status() == JobStatus.FINISHED for j in survivors), 120,
                   "the other workers finish their jobs")
        for job_id in survivors:
            texts = json.dumps([c.args for c in _updates(fake_slack, job_id)])
            assert "stopped unexpectedly" not in texts and "hv-a2" in texts, texts[:500]
        assert len(_updates(fake_slack, doomed_job)) == 1, "the dead worker's job is reported once"
        assert all(workers[str(ran_on[j])].proc.poll() is None for j in survivors), "the other workers run on"
    finally:
        clean_lab.control("hv-a1", "hung", {"on": False})
        server.stop()
        for worker in workers.values():
            worker.stop()
