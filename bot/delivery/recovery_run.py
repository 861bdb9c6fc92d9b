"""The live card of a recovery run in Slack (the worker side of ``jobs.ports.RecoveryReporter``).

Every write waits for the channel's next pacing slot (``bot.delivery.pacing``), shared by every process, so the
card, other cards and alerts in one channel stay within ~1 write per second together.
"""

from __future__ import annotations

from typing import Any

import redis
from slack_sdk import WebClient

from bot.delivery.cards import approval_store
from bot.delivery.pacing import Pacer
from bot.settings import Settings
from bot.views import recovery_run as rv
from jobs.audit import AuditEntry, AuditLog


class RecoveryRunReporter:
    def __init__(self, settings: Settings, connection: redis.Redis, client: WebClient, audit: AuditLog) -> None:
        self.settings, self.redis, self.client, self.audit = settings, connection, client, audit
        interval = settings.channel_post_interval_seconds
        self._pacer = Pacer(connection, interval_s=interval) if interval > 0 else None

    def progress(self, card: dict[str, Any], run: dict[str, Any]) -> None:
        self._update(card, run)

    def finished(self, card: dict[str, Any], run: dict[str, Any]) -> None:
        self._update(card, run)
        status = run.get("status", "")
        summary = run.get("summary") or {}
        outcome = ("succeeded" if summary.get("ok") else "failed") if status == "finished" else status
        approval_store(self.settings, self.redis).finish(run["run_id"], outcome, detail=rv.counts(run["vms"]))
        failed = [v for v in run["vms"] if v["state"] in ("failed", "interrupted")]
        if failed and card.get("ts"):
            lines = "\n".join(rv.vm_row(v) for v in failed[:60])
            more = f"\n… and {len(failed) - 60} more" if len(failed) > 60 else ""
            self._pace(card["channel"])
            self.client.chat_postMessage(channel=card["channel"], thread_ts=card["ts"],
                                         text=f"VMs not recovered:\n```{lines}```{more}"[:3900])
        reply = run.get("reply") or {}
        self.audit.record(AuditEntry(reply.get("user", ""), card.get("channel", ""),
                                     f"{run.get('kind', '')} failover {rv.scope_text(run)}", outcome,
                                     rv.counts(run["vms"]), run["run_id"]))

    def _update(self, card: dict[str, Any], run: dict[str, Any]) -> None:
        if not (card.get("channel") and card.get("ts")):
            return
        view = rv.card(run)
        self._pace(card["channel"])
        self.client.chat_update(channel=card["channel"], ts=card["ts"], text=view.text, blocks=view.block_dicts())

    def _pace(self, channel: str) -> None:
        if self._pacer is not None:
            self._pacer.wait_turn(channel)
