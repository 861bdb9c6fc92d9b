"""Failover cards in Slack: the preview to the requester, the approval card's progress, outcome and expiry.

`CardReporter` is the worker side of `jobs.ports.StepReporter`; the listeners use the same helpers for the
card's state changes they cause (approved, rejected).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import redis
from slack_sdk import WebClient

from bot.delivery.slack import ack_path_client
from bot.settings import Settings, approval_secret
from bot.views import common as views
from bot.views import failover as fv
from bot.views import site_failover as rv
from bot.views.common import View
from jobs.audit import AuditEntry, AuditLog
from jobs.failover.approvals import ApprovalStore
from jobs.keys import AUDIT_STREAM, FAILOVER_PREVIEW_KEY, FAILOVER_PROGRESS_KEY, RECOVERY_PREVIEW_KEY

log = logging.getLogger("hvbot.cards")


def approval_store(settings: Settings, connection: redis.Redis) -> ApprovalStore:
    return ApprovalStore(connection, secret=approval_secret(settings), audit_stream=AUDIT_STREAM)


def lazy_approval_store(settings: Settings, connection: redis.Redis) -> Callable[[], ApprovalStore]:
    """The store, built at the first click: a missing approval secret refuses clicks, not start-up."""
    stores: list[ApprovalStore] = []

    def store_now() -> ApprovalStore:
        if not stores:
            stores.append(approval_store(settings, connection))
        return stores[0]

    return store_now


def stored_preview(connection: redis.Redis, approval_id: str) -> dict[str, Any]:
    raw = connection.get(FAILOVER_PREVIEW_KEY.format(f"a:{approval_id}"))
    return json.loads(raw) if raw else {"kind": "?", "vm": "?", "description": "", "steps": []}


def update_card(client: WebClient, channel: str, ts: str, view: View) -> None:
    if channel and ts:
        client.chat_update(channel=channel, ts=ts, text=view.text, blocks=[b.to_dict() for b in view.blocks])


def announce_start(client: WebClient, channel: str, ts: str, view: View, what: str) -> None:
    """The card says an approved run is starting; best effort, because the run must be queued even when Slack
    cannot be told now (its worker redraws the card at its first step). Raising here would leave an approval
    claimed for execution with no job behind it. It runs before the click's ack and before the job is queued
    (after it, a late update could hide the worker's newer card), so it never waits out a 429."""
    try:
        update_card(ack_path_client(client), channel, ts, view)
    except Exception:  # noqa: BLE001 - Slack refused or did not answer: the worker's updates follow
        log.warning("could not show that %s is starting; queueing it anyway", what, exc_info=True)


class CardReporter:
    """The worker side (``jobs.ports.StepReporter``): previews, per-step card updates, the outcome."""

    def __init__(self, settings: Settings, connection: redis.Redis, client: WebClient, audit: AuditLog) -> None:
        self.settings, self.redis, self.client, self.audit = settings, connection, client, audit
        self._store: ApprovalStore | None = None  # built on first use: lookups-only workers need no approval key

    @property
    def store(self) -> ApprovalStore:
        if self._store is None:
            self._store = approval_store(self.settings, self.redis)
        return self._store

    def preview(self, card: dict[str, Any], preview_id: str, data: dict[str, Any]) -> None:
        if data.get("error"):
            view = views.notice(f"{data['kind']} failover of {data['vm']}: {data['error']}")
        else:
            view = fv.preview(data, preview_id)
        self.client.chat_postEphemeral(channel=card["channel"], user=card["requester"], text=view.text,
                                               blocks=[b.to_dict() for b in view.blocks])

    def step(self, card: dict[str, Any], step: dict[str, Any]) -> None:
        key = FAILOVER_PROGRESS_KEY.format(card["approval_id"])
        self.redis.rpush(key, json.dumps(step))
        self.redis.expire(key, 7 * 86400)
        done = [json.loads(x) for x in self.redis.lrange(key, 0, -1)]
        data = stored_preview(self.redis, card["approval_id"])
        update_card(self.client, card["channel"], card["ts"], fv.progress(data, "running", done))
        mark = "✓" if step["ok"] else "✗"
        text = f"{mark} step {step['number']} on `{step['host']}` ({step['seconds']} s): `{step['command']}`"
        if step.get("error"):
            text += f"\n{step['error']}"
        self.client.chat_postMessage(channel=card["channel"], thread_ts=card["ts"], text=text)
        self.audit.record(AuditEntry(card.get("approver", ""), card["channel"], f"failover {card['vm']} step "
                                     f"{step['number']}", "done" if step["ok"] else "failed",
                                     step.get("error", "")[:300], card["approval_id"]))

    def outcome(self, card: dict[str, Any], outcome: dict[str, Any]) -> None:
        done = [json.loads(x) for x in
                self.redis.lrange(FAILOVER_PROGRESS_KEY.format(card["approval_id"]), 0, -1)]
        data = stored_preview(self.redis, card["approval_id"])
        update_card(self.client, card["channel"], card["ts"], fv.outcome_blocks(data, outcome, done))
        result = "abandoned" if outcome.get("abandoned") else "succeeded" if outcome["ok"] else "failed"
        self.store.finish(card["approval_id"], result, detail=outcome.get("error", ""))
        if not outcome["ok"]:
            self.client.chat_postMessage(channel=card["channel"], thread_ts=card["ts"],
                                                 text=f":x: {outcome['error']}")

    def expired(self, card: dict[str, Any]) -> None:
        """The approval expired (housekeeping): the card says so (a site, host or plan failover's card too)."""
        text = "Expired: nobody approved it in time. Request it again if still needed."
        recovery = self.redis.get(RECOVERY_PREVIEW_KEY.format(f"a:{card['approval_id']}"))
        if recovery:
            update_card(self.client, card["channel"], card["ts"], rv.decided(json.loads(recovery), text))
            return
        data = stored_preview(self.redis, card["approval_id"])
        update_card(self.client, card["channel"], card["ts"], fv.decided(data, text))
