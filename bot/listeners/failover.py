"""Failover from chat: command → preview job → Request → approval card → Approve → execution job → card updates.

The approval state machine is ``jobs.failover.approvals.ApprovalStore`` (atomic, HMAC-bound, audited); this module wires
it to Slack: who may click what (checked at click time), where cards go, and the worker-side card reporter.
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import UTC, datetime
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot.delivery.cards import announce_start, lazy_approval_store, stored_preview, update_card
from bot.grammar import APPROVER, FAILOVER_KINDS, OPERATOR, VIEWER, Command
from bot.listeners.verbs import Verbs
from bot.middleware.authorization import Gate, Needs, Requester
from bot.runtime import Runtime
from bot.views import common as views
from bot.views import failover as fv
from jobs import units
from jobs.failover.approvals import ApprovalStore, Decision, parse_button_value
from jobs.failover.tasks import run_failover, run_preview
from jobs.keys import FAILOVER_PREVIEW_KEY
from jobs.queue import enqueue, new_job_id

log = logging.getLogger("hvbot.failover")


def handle(runtime: Runtime, command: Command, who: Requester, body: dict[str, Any]) -> views.View:
    """`/hyperv failover|reverse`: enqueue the preview (it reads the hosts); the answer comes as an ephemeral."""
    user, channel = who.user, who.channel
    args = list(command.args)
    kind = "reverse" if command.verb == "reverse" else (args[1].lower() if len(args) > 1 else "planned")
    if command.verb == "failover" and (len(args) not in (1, 2) or args[0].lower() in FAILOVER_KINDS
                                       or (len(args) == 2 and kind not in FAILOVER_KINDS)):
        runtime.record(user, channel, command.canonical(), "invalid", "bad failover arguments")
        return views.notice("Usage: /hyperv failover VM [planned|unplanned|test|cancel|complete] "
                            "[--point RECOVERY_POINT] [--host HOST]")
    preview_id = secrets.token_hex(8)
    card = {"requester": user, "channel": channel, "kind": kind, "vm": args[0]}
    job_id = new_job_id("fp")
    enqueue(runtime.queue, run_preview, {
        "preview_id": preview_id, "kind": kind, "vm": args[0], "point": command.extra.get("point"),
        "host": command.host, "card": card}, job_id=job_id, timeout=runtime.settings.job_timeout_seconds,
        description=f"/hyperv {command.canonical()} by {user} (preview)")
    runtime.record(user, channel, command.canonical(), "accepted", "preview", job_id)
    return views.notice(f"Reading the replication state of {args[0]} on both hosts for {units.with_article(kind)} "
                        "preview …")


def on_request(runtime: Runtime, store: ApprovalStore, who: Requester, preview_id: str, respond: Respond) -> None:
    """Request (its one-use token was spent by the gate): one approval card per preview, however often clicked."""
    user, channel = who.user, who.channel
    raw = runtime.redis.get(FAILOVER_PREVIEW_KEY.format(preview_id))
    data = json.loads(raw) if raw else None
    if data is None or data.get("refused") or data.get("error"):
        respond(text="This preview has expired or is not runnable; run the command again.",
                response_type="ephemeral", replace_original=False)
        return
    needs = data["kind"] != "test" or runtime.settings.test_failover_needs_approval
    params = {k: data.get(k) for k in ("kind", "vm", "point", "primary", "replica", "signature")}
    approval = store.request("failover", params, user, channel, runtime.settings.approval_ttl_seconds, needs)
    runtime.redis.set(FAILOVER_PREVIEW_KEY.format(f"a:{approval.id}"), json.dumps(data),
                      ex=runtime.settings.approval_ttl_seconds + 7 * 86400)
    target = runtime.settings.approval_channel or channel
    expires = datetime.fromtimestamp(approval.expires_at, UTC).strftime("%H:%M UTC")
    view = fv.approval_card(data, user, approval.button_value, expires) if needs else fv.progress(data, "starting", [])
    posted = runtime.client.chat_postMessage(channel=target, text=view.text, blocks=[b.to_dict() for b in view.blocks])
    store.attach_message(approval.id, str(posted["channel"]), str(posted["ts"]))
    respond(text=f"Requested (approval {approval.id}) in <#{target}>.", response_type="ephemeral",
            replace_original=True)
    if not needs:
        _start(runtime, store, approval.id, user)


def decide_approval(runtime: Runtime, store: ApprovalStore, user: str, approve: bool, value: str,
                    respond: Respond) -> Decision:
    """One click's decision, made atomically by the store (approver role checked now); a refusal is answered to the
    clicker alone."""
    approval_id, digest = parse_button_value(value)
    decision = "approve" if approve else "reject"
    result = store.decide(approval_id, decision, user, runtime.authz.has_role(user, APPROVER), digest)
    if not result.ok:
        respond(text=f"Not {decision}d: {result.reason}.", response_type="ephemeral", replace_original=False)
    return result


def on_decision(runtime: Runtime, store: ApprovalStore, who: Requester, action: dict[str, Any], value: str,
                respond: Respond) -> Decision:
    """Approve or Reject: the gate checked the channel; the approver role (or the requester withdrawing) is checked
    now, at click time, by the store, which decides atomically: one decision per request, however often clicked."""
    user = who.user
    result = decide_approval(runtime, store, user, action.get("action_id") == fv.ACTION_APPROVE, value, respond)
    if not result.ok:
        return result
    approval = result.approval
    assert approval is not None
    data = stored_preview(runtime.redis, approval.id)
    if result.verdict == "rejected":
        rejected = fv.decided(data, f"Rejected by <@{user}>.")
        runtime.after_ack(lambda: update_card(runtime.client, approval.channel, approval.message_ts, rejected),
                          f"the card of rejected approval {approval.id}")  # a 429 waited out here would hold the ack
        return result
    _start(runtime, store, approval.id, user)
    return result


def next_action_text(body: dict[str, Any], action: dict[str, Any]) -> str:
    """A safe-next-action button's value as the command it stands for; the gate parses it like typed text."""
    kind, _, vm = str(action.get("value", "")).partition(":")
    return f"reverse {vm}" if kind == "reverse" else f"failover {vm} {kind}"


def on_next_action(runtime: Runtime, command: Command, who: Requester, body: dict[str, Any],
                   respond: Respond) -> None:
    """A safe-next-action button of a failed run: the same path as typing the command (operator, preview)."""
    view = handle(runtime, command, who, body)
    respond(text=view.text, response_type="ephemeral", replace_original=False)


def _start(runtime: Runtime, store: ApprovalStore, approval_id: str, user: str) -> None:
    """approved → executing exactly once, then the execution job; later callers do nothing."""
    if not store.claim_execution(approval_id, f"enqueued-by-{user}"):
        return
    approval = store.get(approval_id)
    assert approval is not None
    p = approval.params
    card = {"approval_id": approval_id, "channel": approval.channel, "ts": approval.message_ts,
            "kind": p["kind"], "vm": p["vm"], "requester": approval.requester, "approver": approval.decided_by}
    preview = stored_preview(runtime.redis, approval_id)
    starting = fv.progress(preview, f"approved by {approval.decided_by}, running", [])
    announce_start(runtime.client, approval.channel, approval.message_ts, starting,
                   f"the failover of approval {approval_id}")
    enqueue(runtime.queue, run_failover, {
        "approval_id": approval_id, "kind": p["kind"], "vm": p["vm"], "primary": p["primary"],
        "replica": p["replica"], "point": p.get("point"), "signature": p["signature"], "card": card,
        "heartbeat_seconds": min(5.0, runtime.settings.abandoned_check_seconds)},
        job_id=f"fo{approval_id}", timeout=max(runtime.settings.job_timeout_seconds, 1800),
        description=f"{p['kind']} failover of {p['vm']} (approval {approval_id})")  # no Retry: steps mutate


def register(app: App, runtime: Runtime, gate: Gate) -> Verbs:
    store_now = lazy_approval_store(runtime.settings, runtime.redis)

    def ack_only(ack: Ack) -> None:
        ack()

    def request(context: BoltContext, respond: Respond) -> None:
        on_request(runtime, store_now(), context["requester"], context["value"], respond)

    def decide(ack: Ack, context: BoltContext, action: dict[str, Any], respond: Respond) -> None:
        ack()  # first: Slack's 3 s; the store call is a few ms
        on_decision(runtime, store_now(), context["requester"], action, context["value"], respond)

    def dismiss(respond: Respond) -> None:
        respond(delete_original=True)

    may_request = gate.click(Needs(OPERATOR, "failover", audit=True, once=True))
    app.action(fv.ACTION_REQUEST, middleware=[may_request])(ack=ack_only, lazy=[request])
    app.action(fv.ACTION_DISMISS)(ack=ack_only, lazy=[dismiss])

    def next_action(body: dict[str, Any], context: BoltContext, respond: Respond) -> None:
        on_next_action(runtime, context["command"], context["requester"], body, respond)

    for kind in fv.NEXT_LABELS:
        app.action(f"{fv.ACTION_NEXT}_{kind}", middleware=[gate.command(next_action_text)])(
            ack=ack_only, lazy=[next_action])
    # The approval channel is the one explicit exception to the allowed-channel list (README, "Approvals").
    approval_channels = (runtime.settings.approval_channel,) if runtime.settings.approval_channel else ()
    may_decide = gate.click(Needs(VIEWER, "approve or reject a failover", audit=True, also_in=approval_channels,
                                 home=True))
    app.action(fv.ACTION_APPROVE, middleware=[may_decide])(decide)
    app.action(fv.ACTION_REJECT, middleware=[may_decide])(decide)
    return {"failover": handle, "reverse": handle}
