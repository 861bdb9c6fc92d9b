"""Failover drills in Slack (the bot's ``jobs.ports.DrillReporter``): one message per drill, updated in place
while it runs, then the report's summary with the whole report attached as a JSON file in its thread (audit
evidence, uploaded with files_upload_v2 as result CSVs are). Notices go to the alert channels: on-call (with its
user group) when a test VM is left behind, the warning channel for untested plans and due drills."""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.delivery.pacing import Pacer
from bot.settings import Settings
from bot.views import drills as views
from bot.views.common import View
from jobs.keys import MESSAGE_KEY
from jobs.ports import ReplyTo
from jobs.recovery import drill_report

log = logging.getLogger("hvbot.drill")
PROGRESS_EVERY_S = 2.0  # chat.update of a drill's message at most this often (Slack: ~1 write/s per channel)


class SlackDrillReporter:
    def __init__(self, settings: Settings, connection: redis.Redis, client: WebClient) -> None:
        self._settings, self._redis, self.client = settings, connection, client
        interval = settings.channel_post_interval_seconds
        self._pacer = Pacer(connection, interval_s=interval) if interval > 0 else None
        self._last_progress: dict[str, float] = {}

    def _channel(self, reply: ReplyTo) -> str:
        return reply.channel or self._settings.alert_warning_channel  # scheduled drills from plan files

    def _write(self, key: str, channel: str, view: View) -> tuple[str, str]:
        """Post the drill's one message, or update it; returns (channel, ts)."""
        known = self._redis.hgetall(MESSAGE_KEY.format(key))
        if known:
            channel, ts = known[b"channel"].decode(), known[b"ts"].decode()
            self.client.chat_update(channel=channel, ts=ts, text=view.text, blocks=view.block_dicts())
            return channel, ts
        if self._pacer is not None:
            self._pacer.wait_turn(channel)
        posted = self.client.chat_postMessage(channel=channel, text=view.text, blocks=view.block_dicts())
        where = {"channel": str(posted["channel"]), "ts": str(posted["ts"])}
        self._redis.hset(MESSAGE_KEY.format(key), mapping=where)
        self._redis.expire(MESSAGE_KEY.format(key), self._settings.result_ttl_seconds)
        return where["channel"], where["ts"]

    def progress(self, drill_id: str, reply: ReplyTo, text: str) -> None:
        now = time.monotonic()
        if now - self._last_progress.get(drill_id, -PROGRESS_EVERY_S) < PROGRESS_EVERY_S:
            return  # the next update or the report carries it
        self._last_progress[drill_id] = now
        try:
            self._write(f"drill:{drill_id}", self._channel(reply), views.progress(text))
        except SlackApiError as exc:  # progress is best effort; the report is what counts
            log.warning("drill %s progress not shown: %s", drill_id, exc.response.get("error"))

    def report(self, drill_id: str, reply: ReplyTo, report: dict[str, Any]) -> None:
        self._last_progress.pop(drill_id, None)
        channel, ts = self._write(f"drill:{drill_id}", self._channel(reply), views.report(report))
        if self._pacer is not None:
            self._pacer.wait_turn(channel)
        self.client.files_upload_v2(channel=channel, thread_ts=ts, content=drill_report.as_file(report),
                                    filename=f"hvbot-drill-{drill_id}.json",
                                    title=f"Drill report {report['target']} ({drill_id})")

    def notice(self, notice_id: str, text: str, urgent: bool) -> None:
        s = self._settings
        channel = s.alert_critical_channel if urgent else s.alert_warning_channel
        mention = f"<!subteam^{s.oncall_usergroup}>" if urgent and s.oncall_usergroup else None
        view = views.notice(text, mention)
        if self._pacer is not None:
            self._pacer.wait_turn(channel)
        self.client.chat_postMessage(channel=channel, text=view.text, blocks=view.block_dicts())
