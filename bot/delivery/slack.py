"""Posting to Slack from workers and the server: bot-token WebClient with retry handlers, per-channel pacing,
and SlackReporter (the jobs.ports implementation): one message per request, updated in place."""

from __future__ import annotations

import json
import logging
from typing import Any

import redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import HttpRequest, HttpResponse, RetryState
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookClient

from bot.delivery.pacing import Pacer
from bot.metrics import SLACK_CALLS, SLACK_RATE_LIMITED
from bot.settings import Settings
from bot.views import backup as backup_views
from bot.views import common as views
from jobs.keys import MESSAGE_KEY, RESULT_KEY
from jobs.ports import ReplyTo

log = logging.getLogger("hvbot.slack")

CSV_AUTO_PAGES = 5  # results longer than this many pages also get the CSV in the thread
ACK_PATH_TIMEOUT_S = 2  # a Web API call made before a click's ack: Slack wants the ack within 3 s


class CountedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """RateLimitErrorRetryHandler that counts each 429 it retries (hvbot_slack_rate_limited_total); slack_sdk asks
    it only while retries remain, so the last 429, raised to the caller, is counted by CountedWebClient."""

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        if response is not None and response.status_code == 429:
            SLACK_RATE_LIMITED.labels(_method_of(request.url)).inc()
        return super()._can_retry(state=state, request=request, response=response, error=error)


class CountedWebClient(WebClient):
    """WebClient whose every Web API call is counted by method and outcome (after the SDK's retries)."""

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:  # type: ignore[override]
        outcome = "connection_error"
        try:
            response = super().api_call(api_method, **kwargs)
            outcome = "ok"
            return response
        except SlackApiError as exc:
            outcome = "rate_limited" if exc.response.status_code == 429 else "error"
            if outcome == "rate_limited":
                SLACK_RATE_LIMITED.labels(api_method).inc()
            raise
        finally:
            SLACK_CALLS.labels(api_method, outcome).inc()


def _method_of(url: str) -> str:
    """`https://slack.com/api/chat.postMessage?x=1` -> chat.postMessage (a method name, never an id)."""
    return url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def retry_handlers() -> list[Any]:
    return [ConnectionErrorRetryHandler(max_retry_count=2), CountedRateLimitRetryHandler(max_retry_count=3)]


def ack_path_client(client: WebClient) -> WebClient:
    """The bot's client for one best-effort call made before a click's ack (Bolt answers when the listener
    returns): a short timeout and no retries, so neither a 429's Retry-After nor a slow Slack holds the ack."""
    return CountedWebClient(token=client.token, base_url=client.base_url, timeout=ACK_PATH_TIMEOUT_S,
                            retry_handlers=[])


def web_client(settings: Settings) -> WebClient:
    return CountedWebClient(
        token=settings.secret("slack_bot_token") or None,
        base_url=settings.api_base_url(),
        timeout=10,
        retry_handlers=retry_handlers(),
    )


class SlackReporter:
    """jobs.ports.Reporter for Slack. All state (message ts, results) lives in Redis, not in this process."""

    def __init__(self, settings: Settings, connection: redis.Redis, client: WebClient | None = None) -> None:
        self._settings = settings
        self._redis = connection
        self.client = client or web_client(settings)
        interval = settings.channel_post_interval_seconds
        self._pacer = Pacer(connection, interval_s=interval) if interval > 0 else None

    # --- Reporter -------------------------------------------------------------------------------------------
    def started(self, job_id: str, reply: ReplyTo) -> None:
        if reply.here:  # ephemeral requests already show "working…" as the slash command's ack
            view = views.working(reply.command, job_id)
            self._post_or_update(job_id, reply, view)

    def finished(self, job_id: str, reply: ReplyTo, report: dict[str, Any]) -> None:
        self.store_result(job_id, reply, report)
        view = views.result(reply.command, job_id, report, 0, self._settings.rows_per_page)
        ts = self._deliver(job_id, reply, view)
        if reply.here and ts:
            self._thread_details(job_id, reply, report, ts)

    def failed(self, job_id: str, reply: ReplyTo, message: str) -> None:
        self._deliver(job_id, reply, views.failure(reply.command, job_id, message))

    def update(self, key: str, reply: ReplyTo, text: str, actions: list[dict[str, str]] | None = None) -> None:
        """One channel message per `key`, posted once, then updated in place (backup-check retries, exports)."""
        self._post_or_update(key, reply, backup_views.progress(text, actions))

    def backup_alert(self, alert_id: str, reply: ReplyTo, vm: str, text: str) -> None:
        """jobs.backup.alert: the on-call alert with Retry / Resynchronize buttons."""
        self._post_or_update(alert_id, reply, backup_views.resume_alert(vm, text))

    # --- results kept for paging and CSV ------------------------------------------------------------------
    def store_result(self, job_id: str, reply: ReplyTo, report: dict[str, Any]) -> None:
        payload = json.dumps({"command": reply.command, "reply": reply.to_dict(), "report": report})
        self._redis.set(RESULT_KEY.format(job_id), payload, ex=self._settings.result_ttl_seconds)

    def load_result(self, job_id: str) -> dict[str, Any] | None:
        raw = self._redis.get(RESULT_KEY.format(job_id))
        return json.loads(raw) if raw else None

    def upload_csv(self, job_id: str, channel: str, thread_ts: str | None = None) -> bool:
        stored = self.load_result(job_id)
        if stored is None:
            return False
        self.client.files_upload_v2(
            channel=channel,
            thread_ts=thread_ts,
            content=views.report_csv(stored["report"]),
            filename=f"hvbot-{job_id}.csv",
            title=f"{stored['command']} (job {job_id})",
        )
        return True

    def dm_channel(self, user: str) -> str:
        return str(self.client.conversations_open(users=user)["channel"]["id"])

    # --- delivery -------------------------------------------------------------------------------------------
    def _deliver(self, job_id: str, reply: ReplyTo, view: views.View) -> str | None:
        if reply.here:
            return self._post_or_update(job_id, reply, view)
        if reply.response_url and self._respond(reply.response_url, view):
            return None
        # response_url gone (5 uses / 30 min) or absent: fall back to an ephemeral message from the bot
        self.client.chat_postEphemeral(channel=reply.channel, user=reply.user, text=view.text, blocks=view.blocks)
        return None

    def _post_or_update(self, job_id: str, reply: ReplyTo, view: views.View) -> str:
        known = self._redis.hgetall(MESSAGE_KEY.format(job_id))
        if known:
            channel, ts = _text(known[b"channel"]), _text(known[b"ts"])
            self.client.chat_update(channel=channel, ts=ts, text=view.text, blocks=view.blocks)
            return ts
        if self._pacer is not None:
            self._pacer.wait_turn(reply.channel)
        response = self.client.chat_postMessage(channel=reply.channel, text=view.text, blocks=view.blocks)
        channel, ts = str(response["channel"]), str(response["ts"])
        key = MESSAGE_KEY.format(job_id)
        self._redis.hset(key, mapping={"channel": channel, "ts": ts})
        self._redis.expire(key, self._settings.result_ttl_seconds)
        return ts

    def _respond(self, response_url: str, view: views.View) -> bool:
        hook = WebhookClient(response_url, timeout=10, retry_handlers=retry_handlers())
        response = hook.send(text=view.text, blocks=view.block_dicts(), replace_original=True,
                             response_type="ephemeral")
        if response.status_code != 200:
            log.warning("response_url answered %s; falling back to chat.postEphemeral", response.status_code)
        return response.status_code == 200

    def _thread_details(self, job_id: str, reply: ReplyTo, report: dict[str, Any], ts: str) -> None:
        lines = views.error_lines(report)
        if lines:
            text = "Per-host errors:\n" + "\n".join(lines)
            self.client.chat_postMessage(channel=reply.channel, thread_ts=ts, text=text[:3900])
        if views.page_count(report, self._settings.rows_per_page) > CSV_AUTO_PAGES:
            self.upload_csv(job_id, reply.channel, thread_ts=ts)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
