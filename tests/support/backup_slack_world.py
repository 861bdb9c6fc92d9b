"""A Slack-side world for the backup/export tests: the Bolt app (signed requests via app.dispatch), the fake
Slack Web API over HTTP, real Redis, a real RQ worker in this process, and an in-process lab whose clock
is frozen and moved by the test."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import redis
from rq.job import Job
from rq.serializers import JSONSerializer
from slack_bolt import App, BoltRequest

from bot.adapters.fake_slack import FakeSlack
from bot.app import build_app
from bot.runtime import build_runtime
from bot.settings import Settings
from jobs import ports as reporting
from jobs.hyperv import process_fleet
from lab.fleet import Lab
from tests.support.fixtures_redis import TEST_QUEUE
from tests.support.fixtures_slack import BOT_TOKEN, SIGNING_SECRET, action_body, signed_headers, slash_body
from tests.support.workers import work_dry

OPERATOR_ID, VIEWER_ID = "U100", "U200"


class World:
    def __init__(self, lab: Lab, fake: FakeSlack, conn: redis.Redis, inventory: Path) -> None:
        self.lab, self.fake, self.redis = lab, fake, conn
        settings = Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                            slack_api_url=fake.api_url, queue=TEST_QUEUE, channel_post_interval_seconds=0,
                            operators=[OPERATOR_ID], inventory=inventory)
        self.app: App = build_app(settings, runtime=build_runtime(settings, connection=conn))
        self.runtime = self.app.runtime  # type: ignore[attr-defined]
        self.queue = self.runtime.queue
        reporting.install(self.runtime.reporter)  # what `hvbot worker` does before it works

    def close(self) -> None:
        reporting.install(reporting.NoReporter())
        for fleet in process_fleet._fleet_cache.values():
            fleet.close()
        process_fleet._fleet_cache.clear()

    # -- Slack in ------------------------------------------------------------------------------------------
    def _dispatch(self, body: str) -> Any:
        response = self.app.dispatch(BoltRequest(body=body, headers={
            k.lower(): [v] for k, v in signed_headers(body).items()}))
        assert response.status == 200, response.body
        return response

    def say(self, text: str, user: str = OPERATOR_ID) -> dict[str, Any]:
        """A signed /hyperv request; returns the ack (text + blocks)."""
        body = slash_body(text, user=user, response_url=self.fake.response_url(f"slash-{user}"))
        return dict(json.loads(self._dispatch(body).body))

    def click(self, action_id: str, value: str, user: str = OPERATOR_ID, message_ts: str = "") -> None:
        body = action_body(action_id, value, user=user, message_ts=message_ts,
                           response_url=self.fake.response_url(f"click-{user}"))
        self._dispatch(body)

    def card(self, text: str, user: str = OPERATOR_ID) -> str:
        """Send a destructive command and check its confirm card; returns the Run button's request id."""
        ack = self.say(text, user=user)
        blocks = json.dumps(ack.get("blocks", []))
        assert '"confirm"' in blocks and "hvbot_bk_run" in blocks, ack  # Slack's native confirm dialog
        request_id = re.search(r'"action_id": "hvbot_bk_run".*?"value": "([0-9a-f]+)"', blocks)
        assert request_id, blocks
        return request_id.group(1)

    def confirm(self, text: str, user: str = OPERATOR_ID) -> str:
        """The card, then Run clicked by the same user."""
        request_id = self.card(text, user=user)
        self.click("hvbot_bk_run", request_id, user=user)
        return request_id

    # -- jobs ----------------------------------------------------------------------------------------------
    def work(self) -> None:
        """Run every queued job now with a real RQ worker (burst)."""
        work_dry(self.queue, self.redis)

    def scheduled(self) -> list[Job]:
        registry = self.queue.scheduled_job_registry
        return [Job.fetch(i, connection=self.redis, serializer=JSONSerializer) for i in registry.get_job_ids()]

    def release_scheduled(self, prefix: str = "") -> list[str]:
        """Move scheduled jobs to the queue now, as RQ's scheduler does when they are due (no waiting)."""
        moved = []
        for job in self.scheduled():
            if job.id.startswith(prefix):
                self.queue.scheduled_job_registry.remove(job)
                self.queue.enqueue_job(job)
                moved.append(job.id)
        return moved

    # -- Slack out -----------------------------------------------------------------------------------------
    def messages(self, needle: str) -> tuple[list[Any], list[Any]]:
        """(chat.postMessage calls, chat.update calls) whose text contains `needle`."""
        posts = [c for c in self.fake.calls_to("chat.postMessage") if needle in str(c.args.get("text", ""))]
        ts = {c.response.get("ts") for c in posts}
        updates = [c for c in self.fake.calls_to("chat.update") if c.args.get("ts") in ts]
        return posts, updates

    def texts(self, needle: str) -> list[str]:
        posts, updates = self.messages(needle)
        return [str(c.args["text"]) for c in posts + updates]

    def responses(self, name: str) -> list[str]:
        return [str(c.args.get("text", "")) for c in self.fake.calls if c.path.endswith(f"/{name}")]
