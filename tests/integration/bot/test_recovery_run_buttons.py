"""The buttons of a recovery run's card: follow-ups go through the grammar and the gate like typed text, and the
command's own listener answers (here the single-VM failover's, whose preview job gets queued); Resume (operator)
queues the preview of the run's VMs not done."""

from __future__ import annotations

import json

import redis
from rq import Queue
from rq.serializers import JSONSerializer
from slack_bolt import App, BoltRequest

from bot.adapters.fake_slack import FakeSlack
from bot.app import build_app
from bot.runtime import build_runtime
from bot.settings import Settings
from bot.views import recovery_run as rv
from jobs.recovery.model import Member, PlanGroup, ResolvedGroup, ResolvedPlan, Scope, ScopeKind
from jobs.recovery.progress import RunProgress
from jobs.recovery.tasks import remaining_plan
from tests.support.fixtures_redis import TEST_QUEUE
from tests.support.fixtures_slack import BOT_TOKEN, SIGNING_SECRET, action_body, signed_headers

OP, VIEWER = "U0OP", "U0VIEW"


def _app(fake: FakeSlack, conn: redis.Redis) -> App:
    settings = Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET, slack_api_url=fake.api_url,
                        queue=TEST_QUEUE, channel_post_interval_seconds=0, operators=[OP])
    return build_app(settings, runtime=build_runtime(settings, connection=conn))


def _click(app: App, fake: FakeSlack, value: str, user: str, hook: str) -> None:
    body = action_body(f"{rv.ACTION_COMMAND}_complete", value, user=user, message_ts="9.9",
                       response_url=fake.response_url(hook))
    response = app.dispatch(BoltRequest(body=body, headers={k.lower(): [v] for k, v in signed_headers(body).items()}))
    assert response.status == 200


def test_follow_up_button_runs_its_command_through_the_gate(fake_slack: FakeSlack, redis_conn: redis.Redis) -> None:
    app = _app(fake_slack, redis_conn)
    _click(app, fake_slack, "failover fw01 complete", VIEWER, "viewer")
    refused = fake_slack.wait_for(lambda calls: [c for c in calls if c.path.endswith("/viewer")], 10)[0]
    assert "operator" in json.dumps(refused.args)
    queue = Queue(TEST_QUEUE, connection=redis_conn, serializer=JSONSerializer)
    assert queue.count == 0
    _click(app, fake_slack, "failover fw01 complete", OP, "op")
    fake_slack.wait_for(lambda calls: [c for c in calls if c.path.endswith("/op")], 10)
    jobs = [queue.fetch_job(i) for i in queue.job_ids]
    assert [(j.kwargs["kind"], j.kwargs["vm"]) for j in jobs if j] == [("complete", "fw01")]  # its preview job
    outcomes = {(e.command, e.outcome) for e in app.runtime.audit.recent(10)}  # type: ignore[attr-defined]
    assert ("failover fw01 complete", "refused") in outcomes


def test_resume_button_queues_a_preview_of_the_vms_not_done(fake_slack: FakeSlack, redis_conn: redis.Redis) -> None:
    app = _app(fake_slack, redis_conn)
    plan = ResolvedPlan(Scope(ScopeKind.SITE, "site-a"), "", (ResolvedGroup(
        "core", PlanGroup("core", ("fw01", "dc01")), (Member("fw01", "hv-a1", "hv-b1"), Member("dc01", "hv-a1", "hv-b1"))),))
    progress = RunProgress(redis_conn, "ap7")
    progress.create(plan, {"kind": "unplanned", "scope": {"kind": "site", "value": "site-a"}})
    progress.finish(plan.vms()[0])  # fw01 done; dc01 not
    for user, hook in ((VIEWER, "v"), (OP, "o")):
        body = action_body(rv.ACTION_RESUME, "ap7", user=user, message_ts="9.9", response_url=fake_slack.response_url(hook))
        response = app.dispatch(BoltRequest(body=body, headers={k.lower(): [v] for k, v in signed_headers(body).items()}))
        assert response.status == 200
    refused = fake_slack.wait_for(lambda calls: [c for c in calls if c.path.endswith("/v")], 10)[0]
    assert "operator" in json.dumps(refused.args)
    answered = fake_slack.wait_for(lambda calls: [c for c in calls if c.path.endswith("/o")], 10)[0]
    assert "not done" in json.dumps(answered.args)
    queue = Queue(TEST_QUEUE, connection=redis_conn, serializer=JSONSerializer)
    jobs = [queue.fetch_job(i) for i in queue.job_ids]
    assert [(j.func_name, j.kwargs["run_id"]) for j in jobs if j] == [("jobs.recovery.resume.run_resume_preview", "ap7")]
    assert [m.vm for m in (remaining_plan(redis_conn, "ap7") or plan).vms()] == ["dc01"]  # what that preview covers
    RunProgress(redis_conn, "ap7").finish(plan.vms()[1])
    assert remaining_plan(redis_conn, "ap7") is None  # nothing left: the preview would say so
