"""Alert notifications -> Slack writes, paced across every process (the bot's `jobs.ports.AlertPoster`).

Every write first takes the channel's turn from `bot.delivery.pacing.Pacer` (one write per second per channel across
workers, reference/slack.md §4). A 429 is not retried blindly by slack_sdk: its Retry-After goes to
`Pacer.defer`, so every worker holds off that channel, and the write retries in its next turn. After posting,
`AlertEngine.set_message_ref` stores (channel, ts) so later notifications edit in place and resolves thread.
A message is rendered only once its turn has come, from `AlertEngine.current`: a turn can take seconds, and a VM
muted meanwhile (its host went down, someone silenced it) must not be named.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler

from bot.delivery.pacing import Pacer
from bot.delivery.slack import CountedWebClient
from bot.settings import Settings
from bot.views import alerts as alert_views
from bot.views.common import View
from jobs import units
from jobs.monitor.notifications import Notification, NotificationKind
from jobs.monitor.state import AlertEngine

log = logging.getLogger("hvbot.alerts")

MAX_ATTEMPTS = 6  # a write gives up after this many 429s in a row (logged; the engine keeps its state)


class SlackAlertPoster:
    def __init__(self, client: WebClient, pacer: Pacer | None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.pacer = pacer
        self._sleep = sleep
        self.writes = 0  # successful Slack writes (posts, updates, thread replies, file shares)
        self.rate_limited = 0  # 429s seen and waited out

    # ---- AlertPoster --------------------------------------------------------------------------------------
    def deliver(self, notes: Sequence[Notification], engine: AlertEngine) -> int:
        before = self.writes
        for note in notes:
            try:
                self.send(note, engine)
            except SlackApiError as exc:  # one failed notification must not stop the others
                log.error("alert %s to %s failed: %s", note.kind.value, note.channel, exc.response.get("error"))
        return self.writes - before

    def send(self, note: Notification, engine: AlertEngine) -> None:
        ref = note.message_ref
        if note.kind == NotificationKind.RESOLVE:
            if ref:
                self._write(ref["channel"], "chat_update", lambda: alert_views.resolved_message(note), ts=ref["ts"])
                self._write(ref["channel"], "chat_postMessage", lambda: alert_views.resolve_reply(note),
                            thread_ts=ref["ts"])
            else:  # never posted (or its ref was lost): say it once in the channel
                self._write(note.channel, "chat_postMessage", lambda: alert_views.resolve_reply(note))
            self._attach(note, ref["channel"] if ref else note.channel, ref["ts"] if ref else None)
            return
        sent = [note]

        def view() -> View:  # called when the channel's turn has come, on every attempt
            sent[0] = engine.current(sent[0])
            return alert_views.alert(sent[0])

        if note.kind == NotificationKind.UPDATE_GROUP and ref:
            self._write(ref["channel"], "chat_update", view, ts=ref["ts"])
            self._attach(sent[0], ref["channel"], ref["ts"])
            return
        answer = self._write(note.channel, "chat_postMessage", view)  # post, repeat, or update without ref
        new_ref = {"channel": str(answer["channel"]), "ts": str(answer["ts"])}
        engine.set_message_ref(note.group_key, new_ref)
        self._attach(sent[0], new_ref["channel"], new_ref["ts"])

    # ---- writes -------------------------------------------------------------------------------------------
    def _attach(self, note: Notification, channel: str, thread_ts: str | None) -> None:
        if not note.attachment_rows:
            return
        content = alert_views.csv_text(note.attachment_rows)
        self._paced(channel, lambda: self.client.files_upload_v2(
            channel=channel, thread_ts=thread_ts, content=content, filename="replica-alerts.csv",
            title=f"{note.title} ({units.plural(len(note.attachment_rows or []), 'row')})",
        ))

    def _write(self, channel: str, method: str, view: Callable[[], View], **kwargs: Any) -> Any:
        call = getattr(self.client, method)

        def write() -> Any:
            rendered = view()
            return call(channel=channel, text=rendered.text, blocks=rendered.block_dicts(), **kwargs)

        return self._paced(channel, write)

    def _paced(self, channel: str, call: Callable[[], Any]) -> Any:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if self.pacer is not None:
                self.pacer.wait_turn(channel, sleep=self._sleep)
            try:
                answer = call()
            except SlackApiError as exc:
                if exc.response.status_code != 429 or attempt == MAX_ATTEMPTS:
                    raise
                retry_after = float(exc.response.headers.get("Retry-After", exc.response.headers.get(
                    "retry-after", 1)))
                self.rate_limited += 1
                log.warning("Slack 429 on %s: waiting %.0f s (Retry-After) before the next write", channel,
                            retry_after)
                if self.pacer is not None:
                    self.pacer.defer(channel, retry_after)
                else:
                    self._sleep(retry_after)
                continue
            self.writes += 1
            return answer
        raise AssertionError("unreachable")


def alert_client(settings: Settings) -> WebClient:
    """Only connection errors are retried by slack_sdk; 429s are handled here, through the shared pacer."""
    return CountedWebClient(token=settings.secret("slack_bot_token") or None, base_url=settings.api_base_url(),
                            timeout=10, retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2)])


def alert_poster(settings: Settings, connection: redis.Redis) -> SlackAlertPoster:
    """The poster a process installs (jobs.ports.install_poster): paced through Redis unless pacing is off."""
    interval = settings.channel_post_interval_seconds
    return SlackAlertPoster(alert_client(settings), Pacer(connection, interval_s=interval) if interval > 0 else None)
