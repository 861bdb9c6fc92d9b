"""`jobs` and `cancel` through the Bolt app on real Redis: owners cancel their queued jobs, others need the
operator role, and the request's message says it was cancelled."""

from __future__ import annotations

import json
import re
import threading

import pytest
import redis
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from slack_bolt import App, BoltRequest

from bot.adapters.fake_slack import FakeSlack
from bot.app import build_app
from bot.runtime import build_runtime
from bot.settings import Settings
from jobs.inventory.tasks import run_lookup
from jobs.queue import enqueue
from tests.support.fixtures_redis import TEST_QUEUE
from tests.support.fixtures_slack import BOT_TOKEN, SIGNING_SECRET, signed_headers, slash_body


def _app(fake: FakeSlack, conn: redis.Redis, **kw: object) -> App:
    settings = Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET, slack_api_url=fake.api_url,
                        queue=TEST_QUEUE,
                        channel_post_interval_seconds=0, **kw)
    return build_app(settings, runtime=build_runtime(settings, connection=conn))


def _say(app: App, text: str, user: str = "U100", response_url: str = "") -> str:
    body = slash_body(text, user=user, response_url=response_url)
    response = app.dispatch(BoltRequest(body=body, headers={k.lower(): [v] for k, v in signed_headers(body).items()}))
    assert response.status == 200
    data = json.loads(response.body)
    return str(data["text"]) + "\n" + json.dumps(data.get("blocks", []))  # the job id is in a context block


def test_jobs_lists_and_owner_cancels(fake_slack: FakeSlack, redis_conn: redis.Redis) -> None:
    app = _app(fake_slack, redis_conn)
    ack = _say(app, "vms web*", response_url=fake_slack.response_url("mine"))
    job_id = re.search(r"job (hv[0-9a-f]+)", ack).group(1)  # type: ignore[union-attr]
    listing = _say(app, "jobs")
    assert job_id in listing and "queued" in listing and "vms web*" in listing
    refused = _say(app, f"cancel {job_id}", user="U200")
    assert "needs the *operator* role" in refused
    done = _say(app, f"cancel {job_id}")
    assert "cancelled before it started" in done
    assert Job.fetch(job_id, connection=redis_conn, serializer=JSONSerializer).get_status() == JobStatus.CANCELED
    notice = fake_slack.wait_for(lambda calls: [c for c in calls if c.path.endswith("/mine")], 10)[0]
    assert "Cancelled by U100" in notice.args["text"]
    assert "There is no job" in _say(app, "cancel hv0000000000")
    outcomes = [e.outcome for e in app.runtime.audit.recent(10)]  # type: ignore[attr-defined]
    assert outcomes.count("cancelled") == 1 and "refused" in outcomes and "accepted" in outcomes


def test_operator_may_cancel_anyones_job(fake_slack: FakeSlack, redis_conn: redis.Redis) -> None:
    app = _app(fake_slack, redis_conn, operators=["U300"])
    job_id = re.search(r"job (hv[0-9a-f]+)", _say(app, "memory")).group(1)  # type: ignore[union-attr]
    assert "cancelled before it started" in _say(app, f"cancel {job_id}", user="U300")


def test_cancel_right_after_the_ack_finds_the_job_still_being_queued(
        fake_slack: FakeSlack, redis_conn: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ack comes before the enqueue (bot/intake.py): a `cancel` typed at once must wait for it, not answer
    "there is no job". The intake's one thread is held busy until `cancel` asks it to land what it has."""
    app = _app(fake_slack, redis_conn)
    intake = app.runtime.intake  # type: ignore[attr-defined]
    release = threading.Event()
    intake.submit(lambda: release.wait(30), "", "a slow enqueue ahead")
    job_id = re.search(r"job (hv[0-9a-f]+)", _say(app, "memory")).group(1)  # type: ignore[union-attr]
    assert not redis_conn.exists(f"rq:job:{job_id}")  # acked, not queued yet
    drain = intake.drain

    def drain_after_release(timeout: float = 10.0) -> None:
        release.set()
        drain(timeout)

    monkeypatch.setattr(intake, "drain", drain_after_release)
    monkeypatch.setattr("bot.listeners.jobs.INTAKE_WAIT_S", 30.0)  # a loaded machine must not make this flaky
    assert "cancelled before it started" in _say(app, f"cancel {job_id}")
    assert Job.fetch(job_id, connection=redis_conn, serializer=JSONSerializer).get_status() == JobStatus.CANCELED


def test_jobs_names_what_every_job_does_and_when(fake_slack: FakeSlack, redis_conn: redis.Redis) -> None:
    """Jobs no one typed (a monitor sweep, a site failover preview) are named by their description, not "— by <@>"."""
    app = _app(fake_slack, redis_conn)
    mine = re.search(r"job (hv[0-9a-f]+)", _say(app, "vms web*")).group(1)  # type: ignore[union-attr]
    queue = app.runtime.queue  # type: ignore[attr-defined]
    enqueue(queue, run_lookup, {}, job_id="sweep1", description="replica sweep of hv-a1, hv-a2")
    listing = json.loads(_say(app, "jobs").split("\n", 1)[1])[1]["text"]["text"]
    assert f"`{mine}` queued just now — /hyperv vms web* by <@U100>" in listing
    assert "`sweep1` queued just now — replica sweep of hv-a1, hv-a2" in listing
    assert "by <@>" not in listing
