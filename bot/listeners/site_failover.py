"""Site, host and plan failover from chat: command → preview job (one message, details in its thread) → one
Request → one two-person approval → a re-check job → the execution job ``jobs.recovery.tasks.run_recovery``.

The approval is the single-VM one (``ApprovalStore``: same expiry, HMAC binding, atomic exactly-once decision,
self-approval refused, the approver role checked at click time), bound to ``jobs.recovery.preview.binding``:
the resolved plan and every VM's step signature. A plan that changed between preview and approval is not run:
the re-check job ends the approval as changed and posts a fresh preview (see ``jobs.recovery.preview_tasks``).
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot.delivery.cards import announce_start, lazy_approval_store, update_card
from bot.delivery.recovery_cards import stored_recovery_preview
from bot.grammar import OPERATOR, VIEWER, Command, recovery_scope
from bot.listeners import failover, recovery
from bot.listeners.verbs import Verbs
from bot.middleware.authorization import Gate, Needs, Requester
from bot.runtime import Runtime
from bot.views import common as views
from bot.views import site_failover as rv
from jobs import units
from jobs.failover.approvals import ApprovalStore, Decision
from jobs.keys import RECOVERY_PREVIEW_KEY
from jobs.ports import ReplyTo
from jobs.recovery.preview import binding, runnable
from jobs.recovery.preview_tasks import run_recovery_preview, run_recovery_recheck
from jobs.queue import enqueue, new_job_id

APPROVAL_KIND = "recovery"
RUN_TIMEOUT_S = 4 * 3600  # a whole site, group by group with heartbeat waits: far longer than one VM


def handle_scope(runtime: Runtime, command: Command, who: Requester, body: dict[str, Any]) -> views.View:
    """`failover --site|--host ...` and `plan NAME failover ...`: enqueue the preview; it posts its own message."""
    scope = recovery_scope(command)
    assert scope is not None, "the dispatcher routes only scope forms here"
    preview_id = secrets.token_hex(8)
    reply = ReplyTo(who.channel, who.user, command.canonical())
    job_id = new_job_id("rp")
    enqueue(runtime.queue, run_recovery_preview, {
        "preview_id": preview_id, "kind": scope.failover, "scope": {"kind": scope.kind, "value": scope.value},
        "reply": reply.to_dict()}, job_id=job_id, timeout=runtime.settings.job_timeout_seconds,
        description=f"/hyperv {command.canonical()} by {who.user} (preview)")
    runtime.record(who.user, who.channel, command.canonical(), "accepted", "recovery preview", job_id)
    return views.notice(f"Reading the replication of every VM of {scope.kind} {scope.value} for "
                        f"{units.with_article(scope.failover)} failover preview …")


def dispatch_failover(runtime: Runtime, command: Command, who: Requester, body: dict[str, Any]) -> views.View:
    """`failover` with --site, or --host without a VM, covers many VMs; every other form is the single-VM one."""
    if recovery_scope(command) is not None:
        return handle_scope(runtime, command, who, body)
    return failover.handle(runtime, command, who, body)


def handle_plan(runtime: Runtime, command: Command, who: Requester, body: dict[str, Any]) -> views.View:
    if recovery_scope(command) is not None:
        return handle_scope(runtime, command, who, body)
    return recovery.plan(runtime, command, who, body)


def on_request(runtime: Runtime, store: ApprovalStore, who: Requester, preview_id: str, respond: Respond) -> None:
    """Request (its one-use token was spent by the gate): one approval for the whole preview."""
    data = stored_recovery_preview(runtime.redis, preview_id)
    if data is None or data.get("error") or not runnable(data):
        respond(text="This preview has expired or has nothing that can fail over; run the command again.",
                response_type="ephemeral", replace_original=False)
        return
    needs = data["kind"] != "test" or runtime.settings.test_failover_needs_approval
    approval = store.request(APPROVAL_KIND, binding(data), who.user, who.channel,
                             runtime.settings.approval_ttl_seconds, needs)
    data["reply"] = ReplyTo(who.channel, who.user, f"{data['kind']} failover of {rv.scope_text(data)}").to_dict()
    runtime.redis.set(RECOVERY_PREVIEW_KEY.format(f"a:{approval.id}"), json.dumps(data),
                      ex=runtime.settings.approval_ttl_seconds + 7 * 86400)
    target = runtime.settings.approval_channel or who.channel
    expires = datetime.fromtimestamp(approval.expires_at, UTC).strftime("%H:%M UTC")
    view = (rv.approval_card(data, who.user, approval.button_value, expires) if needs
            else rv.decided(data, "No approval needed by policy; starting."))
    posted = runtime.client.chat_postMessage(channel=target, text=view.text, blocks=view.block_dicts())
    store.attach_message(approval.id, str(posted["channel"]), str(posted["ts"]))
    respond(text=f"Requested (approval {approval.id}) in <#{target}>.", response_type="ephemeral",
            replace_original=False)
    if not needs:
        _start(runtime, store, approval.id, "policy")


def on_decision(runtime: Runtime, store: ApprovalStore, who: Requester, action: dict[str, Any], value: str,
                respond: Respond) -> Decision:
    """Approve or Reject: the gate checked the channel; the approver role (or the requester withdrawing) is checked
    now, at click time, by the store, which decides atomically: one decision per request, however often clicked."""
    user = who.user
    result = failover.decide_approval(runtime, store, user, action.get("action_id") == rv.ACTION_APPROVE, value,
                                      respond)
    if not result.ok:
        return result
    approval = result.approval
    assert approval is not None
    data = stored_recovery_preview(runtime.redis, f"a:{approval.id}") or {}
    if result.verdict == "rejected":
        rejected = rv.decided(data, f"Rejected by <@{user}>.")
        runtime.after_ack(lambda: update_card(runtime.client, approval.channel, approval.message_ts, rejected),
                          f"the card of rejected approval {approval.id}")  # a 429 waited out here would hold the ack
        return result
    _start(runtime, store, approval.id, user)
    return result


def _start(runtime: Runtime, store: ApprovalStore, approval_id: str, user: str) -> None:
    """approved → executing exactly once, then the re-check job (which enqueues the run); later callers do nothing."""
    if not store.claim_execution(approval_id, f"enqueued-by-{user}"):
        return
    approval = store.get(approval_id)
    assert approval is not None
    data = stored_recovery_preview(runtime.redis, f"a:{approval_id}") or {}
    text = f"Approved by <@{approval.decided_by}>; checking the plan is unchanged, then running."
    announce_start(runtime.client, approval.channel, approval.message_ts, rv.decided(data, text),
                   f"the recovery run of approval {approval_id}")
    run = {"approval_id": approval_id, "plan": approval.params["plan"], "kind": approval.params["kind"],
           "reply": data.get("reply") or ReplyTo(approval.channel, approval.requester, "recovery").to_dict(),
           "card": {"channel": approval.channel, "ts": approval.message_ts}}
    enqueue(runtime.queue, run_recovery_recheck, {
        "approval_id": approval_id, "bound": approval.params, "run": run,
        "run_timeout": max(runtime.settings.job_timeout_seconds, RUN_TIMEOUT_S),
        "description": f"{approval.params['kind']} failover of {rv.scope_text(data)} (approval {approval_id})"},
        job_id=f"rk{approval_id}", timeout=runtime.settings.job_timeout_seconds,
        description=f"re-check of recovery approval {approval_id}")  # no Retry: it starts a mutating run


def register(app: App, runtime: Runtime, gate: Gate) -> Verbs:
    store_now = lazy_approval_store(runtime.settings, runtime.redis)

    def ack_only(ack: Ack) -> None:
        ack()

    def request(context: BoltContext, respond: Respond) -> None:
        on_request(runtime, store_now(), context["requester"], context["value"], respond)

    def decide(ack: Ack, context: BoltContext, action: dict[str, Any], respond: Respond) -> None:
        ack()  # first: Slack's 3 s; the store call is a few ms
        on_decision(runtime, store_now(), context["requester"], action, context["value"], respond)

    may_request = gate.click(Needs(OPERATOR, "failover", audit=True, once=True))
    app.action(rv.ACTION_REQUEST, middleware=[may_request])(ack=ack_only, lazy=[request])
    # As for a single VM: the approval channel is the one exception to the allowed-channel list.
    approval_channels = (runtime.settings.approval_channel,) if runtime.settings.approval_channel else ()
    may_decide = gate.click(Needs(VIEWER, "approve or reject a failover", audit=True, also_in=approval_channels,
                                 home=True))
    app.action(rv.ACTION_APPROVE, middleware=[may_decide])(decide)
    app.action(rv.ACTION_REJECT, middleware=[may_decide])(decide)
    return {"failover": dispatch_failover, "plan": handle_plan}
