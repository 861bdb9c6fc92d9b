"""Site, host and plan failover in Slack before it runs: the worker side of ``jobs.ports.RecoveryPreviewer``
(the preview message and its thread, a plan that changed after approval) and the card helpers the listener
shares with it."""

from __future__ import annotations

import json
from typing import Any

import redis
from slack_sdk import WebClient

from bot.delivery.cards import approval_store, update_card
from bot.delivery.pacing import Pacer
from bot.settings import Settings
from bot.views import site_failover as rv
from bot.views.common import View
from jobs.failover.approvals import ApprovalStore
from jobs.keys import RECOVERY_PREVIEW_KEY
from jobs.ports import ReplyTo

MAX_CHANGED_SHOWN = 20


def stored_recovery_preview(connection: redis.Redis, key: str) -> dict[str, Any] | None:
    """A preview by its id, or by ``a:<approval id>`` once it was requested."""
    raw = connection.get(RECOVERY_PREVIEW_KEY.format(key))
    return json.loads(raw) if raw else None


class RecoveryCardReporter:
    """Posts through the bot token, paced per channel like every other channel write."""

    def __init__(self, settings: Settings, connection: redis.Redis, client: WebClient) -> None:
        self.settings, self.redis, self.client = settings, connection, client
        interval = settings.channel_post_interval_seconds
        self._pacer = Pacer(connection, interval_s=interval) if interval > 0 else None
        self._store: ApprovalStore | None = None

    @property
    def store(self) -> ApprovalStore:
        if self._store is None:  # built on first use: a preview needs no approval secret
            self._store = approval_store(self.settings, self.redis)
        return self._store

    def _post(self, channel: str, view: View, thread_ts: str | None = None) -> dict[str, Any]:
        if self._pacer is not None:
            self._pacer.wait_turn(channel)
        response = self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=view.text,
                                                blocks=view.block_dicts())
        return {"channel": str(response["channel"]), "ts": str(response["ts"])}

    def preview(self, reply: ReplyTo, preview_id: str, data: dict[str, Any]) -> None:
        """One message in the requester's channel, the per-VM lines in its thread; an error only to the requester."""
        if data.get("error"):
            view = rv.error(data)
            self.client.chat_postEphemeral(channel=reply.channel, user=reply.user, text=view.text,
                                           blocks=view.block_dicts())
            return
        posted = self._post(reply.channel, rv.preview(data, preview_id))
        for chunk in rv.thread_details(data):
            self._post(posted["channel"], View(chunk[:200], [rv.section(chunk)]), thread_ts=posted["ts"])

    def changed(self, card: dict[str, Any], approval_id: str, reply: ReplyTo, preview_id: str, data: dict[str, Any],
                vms: list[str]) -> None:
        shown = ", ".join(vms[:MAX_CHANGED_SHOWN]) + (f" and {len(vms) - MAX_CHANGED_SHOWN} more"
                                                      if len(vms) > MAX_CHANGED_SHOWN else "")
        detail = f"the plan changed before it ran ({shown}); nothing ran"
        self.store.finish(approval_id, "changed", detail=detail)
        before = stored_recovery_preview(self.redis, f"a:{approval_id}") or data
        update_card(self.client, card.get("channel", ""), card.get("ts", ""),
                    rv.decided(before, f"Not run: {detail}. A fresh preview was posted; request it again."))
        self.preview(reply, preview_id, data)
