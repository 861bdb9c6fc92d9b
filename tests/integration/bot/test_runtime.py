"""Runtime pieces on real Redis with the fake Slack Web API: Redis down, audit stream, reporter fallbacks,
exactly-once final messages, and the abandoned-job detector."""

from __future__ import annotations

import json
import time
from typing import Any

import redis
from rq import Queue
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer
from slack_bolt import BoltRequest

from bot.adapters.fake_slack import FakeSlack
from bot.app import build_app
from bot.listeners.lookups import REDIS_DOWN
from bot.runtime import build_runtime, redis_connection
from bot.settings import Settings
from jobs import liveness as tasks
from jobs.audit import AuditEntry, AuditLog
from jobs.ports import ReplyTo
from tests.support.fixtures_redis import TEST_QUEUE
from tests.support.fixtures_slack import BOT_TOKEN, SIGNING_SECRET, free_port, signed_headers, slash_body


def _settings(fake: FakeSlack, **kw: Any) -> Settings:
    return Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET, slack_api_url=fake.api_url,
                    queue=TEST_QUEUE,
                    channel_post_interval_seconds=0, **kw)


def test_redis_down_gives_an_immediate_clear_message(fake_slack: FakeSlack) -> None:
    settings = _settings(fake_slack, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    app = build_app(settings)
    body = slash_body("ips 10.0.4.17")
    started = time.monotonic()
    response = app.dispatch(BoltRequest(body=body, headers={k.lower(): [v] for k, v in signed_headers(body).items()}))
    assert time.monotonic() - started < 3.0  # well inside Slack's 3 s ack window
    assert response.status == 200 and json.loads(response.body)["text"] == REDIS_DOWN


def test_audit_stream_newest_first(redis_conn: redis.Redis) -> None:
    audit = AuditLog(redis_conn)
    for i in range(5):
        audit.record(AuditEntry(f"U{i}", "C1", f"ips 10.0.0.{i}", "accepted", job_id=f"hv{i}"))
    recent = audit.recent(3)
    assert [e.user for e in recent] == ["U4", "U3", "U2"] and recent[0].command == "ips 10.0.0.4"
    assert recent[0].at > 0 and recent[0].outcome == "accepted"


def test_expired_response_url_falls_back_to_ephemeral(fake_slack: FakeSlack, redis_conn: redis.Redis) -> None:
    runtime = build_runtime(_settings(fake_slack), connection=redis_conn)
    reply = ReplyTo("C1", "U1", "vms", response_url=f"{fake_slack.base_url}/expired/x")
    runtime.reporter.finished("hvj1", reply, {"kind": "vms", "columns": ["host", "vm"], "rows": [
        {"host": "hv-a1", "vm": "web01"}], "errors": [], "hosts_ok": ["hv-a1"]})
    eph = fake_slack.wait_for(lambda calls: [c for c in calls if c.method == "chat.postEphemeral"], 10)[0]
    assert eph.args["user"] == "U1" and "web01" in json.dumps(eph.args["blocks"])
    assert [c.status for c in fake_slack.calls if c.method == "not_found"] == [404]


def test_final_message_is_claimed_once(redis_conn: redis.Redis) -> None:
    assert tasks.claim_final(redis_conn, "hvj2") is True
    assert tasks.claim_final(redis_conn, "hvj2") is False


class Recorder:
    def __init__(self) -> None:
        self.failures: list[tuple[str, str]] = []

    def started(self, job_id: str, reply: ReplyTo) -> None: ...

    def finished(self, job_id: str, reply: ReplyTo, report: dict[str, Any]) -> None: ...

    def failed(self, job_id: str, reply: ReplyTo, message: str) -> None:
        self.failures.append((job_id, message))


def _started_job(conn: redis.Redis, started_ago: float) -> Job:
    queue = Queue("hvtest", connection=conn, serializer=JSONSerializer)
    job = queue.enqueue("jobs.inventory.tasks.run_lookup", kwargs={"verb": "vms", "args": [], "host": None,
                                                                  "reply": ReplyTo("C1", "U1", "vms").to_dict()})
    job.set_status("started")
    job.started_at = job.enqueued_at.fromtimestamp(time.time() - started_ago, job.enqueued_at.tzinfo)
    job.save()
    registry = StartedJobRegistry("hvtest", connection=conn)  # entries are "<job id>:<execution id>" (rq 2.x)
    conn.zadd(registry.key, {f"{job.id}:exec1": time.time() + 3600})
    return job


def test_abandoned_detector_reports_dead_jobs_once_and_spares_live_ones(redis_conn: redis.Redis) -> None:
    dead, alive, fresh = (_started_job(redis_conn, 30), _started_job(redis_conn, 30), _started_job(redis_conn, 0))
    redis_conn.set(tasks.ALIVE_KEY.format(alive.id), 1, px=60_000)  # its process still heart-beats
    recorder = Recorder()
    assert tasks.sweep_abandoned(redis_conn, "hvtest", grace_seconds=5, reporter=recorder) == 1
    assert recorder.failures == [(dead.id, tasks.ABANDONED_MESSAGE)]
    assert tasks.sweep_abandoned(redis_conn, "hvtest", grace_seconds=5, reporter=recorder) == 0  # once only
    assert fresh.id not in [j for j, _ in recorder.failures]  # within the grace period


def test_heartbeat_key_lives_while_running_and_goes_after() -> None:
    url = __import__("tests.support.fixtures_redis", fromlist=["x"]).test_redis_url()
    conn = redis_connection(Settings(redis_url=url))
    with tasks.heartbeat(conn, "hvj3", interval=0.2):
        assert conn.pttl(tasks.ALIVE_KEY.format("hvj3")) > 0
    assert not conn.exists(tasks.ALIVE_KEY.format("hvj3"))


def test_a_handler_bug_still_answers_within_the_ack(fake_slack: FakeSlack, redis_conn: redis.Redis,
                                                    monkeypatch: Any) -> None:
    import bot.listeners.lookups

    def broken(runtime: Any, command: Any, who: Any, body: Any) -> Any:
        raise KeyError("simulated bug")

    monkeypatch.setattr(bot.listeners.lookups, "lookup", broken)
    app = build_app(_settings(fake_slack), runtime=build_runtime(_settings(fake_slack), connection=redis_conn))
    body = slash_body("ips")
    response = app.dispatch(BoltRequest(body=body, headers={k.lower(): [v] for k, v in signed_headers(body).items()}))
    assert response.status == 200 and "internal error" in json.loads(response.body)["text"]
