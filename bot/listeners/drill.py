"""Failover drills from chat: `/hyperv drill PLAN|VM [--host H]`, `/hyperv drill PLAN --every 30d [--at "Sun 03:00"]`.

A drill is a test failover (non-destructive), so it is approved as `/hyperv failover VM test` is: operator role,
and a second person's approval when HVBOT_TEST_FAILOVER_NEEDS_APPROVAL is on (the default). The approval is the
failover's two-person ApprovalStore (HMAC-bound to the target, exactly-once decision, audited) with its own card.
A schedule set from chat runs its drills without a further approval when the person who set it is an approver (or
test failovers need none); otherwise each due drill is announced for an operator to start.
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk.webhook import WebhookClient

from bot.delivery.cards import approval_store, lazy_approval_store, update_card
from bot.grammar import APPROVER, VIEWER, Command, parse_duration
from bot.listeners import failover
from bot.listeners.verbs import Verbs
from bot.middleware.authorization import Gate, Needs, Requester, requester
from bot.runtime import Runtime
from bot.views import common as views
from bot.views import drills as dv
from jobs.failover.approvals import ApprovalStore
from jobs.ports import ReplyTo
from jobs.queue import enqueue, new_job_id
from jobs.recovery.drill_schedule import ScheduleError, check, next_due
from jobs.recovery.drill_store import DrillStore, StoredSchedule
from jobs.recovery.drill_tasks import run_drill
from jobs.recovery.model import DrillSchedule

log = logging.getLogger("hvbot.drill")
DRILL_JOB_TIMEOUT_S = 4 * 3600  # a 200-VM plan with slow guests; the drill's own deadlines end it sooner


def start(runtime: Runtime, target: str, host: str | None, user: str, channel: str, trigger: str = "manual") -> str:
    """Enqueue the drill job; returns its job id."""
    drill_id, job_id = secrets.token_hex(6), new_job_id("dr")
    reply = ReplyTo(channel, user, f"drill {target}", here=True)
    enqueue(runtime.queue, run_drill, {
        "drill_id": drill_id, "target": target, "host": host, "report_to": reply.to_dict(), "trigger": trigger,
        "requested_by": user, "heartbeat_seconds": min(5.0, runtime.settings.abandoned_check_seconds)},
        job_id=job_id, timeout=DRILL_JOB_TIMEOUT_S, description=f"failover drill of {target} by {user}")
    return job_id


def handle(runtime: Runtime, command: Command, who: Requester, body: dict[str, Any]) -> views.View:
    target = command.args[0]
    if "every" in command.extra or "at" in command.extra:
        return _schedule(runtime, command, who)
    if not runtime.settings.test_failover_needs_approval:
        job_id = start(runtime, target, command.host, who.user, who.channel)
        runtime.record(who.user, who.channel, command.canonical(), "accepted", "drill, no second approval "
                       "(test failovers need none here)", job_id)
        return views.notice(f"Drill of {target} started (job {job_id}); progress and the report follow here.")
    store = approval_store(runtime.settings, runtime.redis)
    approval = store.request("drill", {"target": target, "host": command.host, "channel": who.channel}, who.user,
                             who.channel,
                             runtime.settings.approval_ttl_seconds, True)
    where = runtime.settings.approval_channel or who.channel
    expires = datetime.fromtimestamp(approval.expires_at, UTC).strftime("%H:%M UTC")
    view = dv.approval_card(target, who.user, approval.button_value, expires)
    response_url = str(body.get("response_url") or "")
    runtime.after_ack(lambda: _post_card(runtime, store, approval.id, where, view, response_url),
                      f"posting the approval card of drill {approval.id}")
    return views.notice(f"Drill of {target} requested (approval {approval.id}) in <#{where}>: it needs a second "
                        "person's approval, as a test failover does.")


def _post_card(runtime: Runtime, store: ApprovalStore, approval_id: str, where: str, view: views.View,
               response_url: str) -> None:
    """After the ack: the approval card, or a word to the requester that it could not be posted."""
    try:
        posted = runtime.client.chat_postMessage(channel=where, text=view.text, blocks=view.block_dicts())
        store.attach_message(approval_id, str(posted["channel"]), str(posted["ts"]))
    except Exception:  # noqa: BLE001 - Slack or Redis failed: the requester must not wait for a card that never comes
        log.exception("could not post the approval card of drill %s", approval_id)
        if response_url:
            WebhookClient(response_url, timeout=5).send(
                text=f"The approval card of drill request {approval_id} could not be posted in <#{where}> (Slack or "
                     "Redis did not answer); nothing was started and the request expires unused. Please try again "
                     "in a minute.", response_type="ephemeral", replace_original=False)


def _schedule(runtime: Runtime, command: Command, who: Requester) -> views.View:
    target, store = command.args[0], DrillStore(runtime.redis)
    every = command.extra.get("every", "")
    if every.lower() == "off":
        removed = store.remove_schedule(target)
        runtime.record(who.user, who.channel, command.canonical(), "done", "schedule removed" if removed else "none")
        return views.notice(f"Scheduled drills of {target} stopped." if removed else f"{target} had no drill "
                            "schedule set from chat (a plan file's `drill:` stays until the file changes).")
    try:
        if not every:
            raise ScheduleError("`--at` needs `--every`, like `--every 30d --at \"Sun 03:00\"`.")
        span = parse_duration(every, what="drill period")
        schedule = check(DrillSchedule(every_s=span.total_seconds(), at=command.extra.get("at"),
                                       without_approval=(not runtime.settings.test_failover_needs_approval
                                                         or runtime.authz.has_role(who.user, APPROVER))))
    except ValueError as exc:  # ScheduleError, or the duration parser's sentence
        runtime.record(who.user, who.channel, command.canonical(), "invalid", str(exc)[:200])
        return views.notice(f"{exc}\nUsage: `{command.spec.usage()}`")
    now = time.time()
    stored = StoredSchedule(target, schedule, now, who.user, ReplyTo(who.channel, who.user, f"drill {target}",
                                                                       here=True).to_dict())
    store.set_schedule(stored)
    due = next_due(schedule, datetime.fromtimestamp(now, UTC), None)
    how = "runs without a further approval (audited)" if schedule.without_approval else \
        "is announced when due, for an operator to start (an approver setting the schedule makes it run by itself)"
    runtime.record(who.user, who.channel, command.canonical(), "done",
                   f"drill schedule every {every} at {schedule.at or 'any time'}; without approval: "
                   f"{schedule.without_approval}")
    return views.notice(f"Drill of {target} scheduled every {every}" + (f" at {schedule.at} UTC" if schedule.at else "")
                        + f"; first due {due:%a %Y-%m-%d %H:%M} UTC. Each drill {how}.")


def on_decision(runtime: Runtime, store: ApprovalStore, body: dict[str, Any], action: dict[str, Any],
                respond: Respond) -> None:
    """Approve or Reject a drill: approver role checked at click time; the store decides exactly once."""
    user = requester(body).user
    result = failover.decide_approval(runtime, store, user, action.get("action_id") == dv.ACTION_APPROVE,
                                      str(action.get("value", "")), respond)
    if not result.ok or result.approval is None:
        return
    approval, approval_id = result.approval, result.approval.id
    target = str(approval.params.get("target", ""))
    if result.verdict == "rejected":
        view = dv.decided(target, f"rejected by <@{user}>.")
    elif store.claim_execution(approval_id, f"enqueued-by-{user}"):
        job_id = start(runtime, target, approval.params.get("host"), approval.requester,
                       str(approval.params.get("channel") or approval.channel))
        store.finish(approval_id, "done", detail=f"drill job {job_id}", worker_id=f"enqueued-by-{user}")
        where = approval.params.get("channel") or approval.channel
        view = dv.decided(target, f"approved by <@{user}>; running (job {job_id}); the report goes to <#{where}>.")
    else:
        return
    # After the ack (Bolt answers when this returns): a 429 waited out here would hold it past Slack's 3 s. The
    # drill reports in a message of its own, so this card has no newer state to hide.
    runtime.after_ack(lambda: update_card(runtime.client, approval.channel, approval.message_ts, view),
                      f"the card of drill approval {approval_id}")


def register(app: App, runtime: Runtime, gate: Gate) -> Verbs:
    store_now = lazy_approval_store(runtime.settings, runtime.redis)

    def decide(ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        ack()
        on_decision(runtime, store_now(), body, action, respond)

    # One authorization path, as for failover approvals: channel and role at the gate (the approval channel is
    # the one exception to the allowed-channel list); the approver role and the decision in the store.
    approval_channels = (runtime.settings.approval_channel,) if runtime.settings.approval_channel else ()
    may_decide = gate.click(Needs(VIEWER, "approve or reject a drill", audit=True, also_in=approval_channels,
                                 home=True))
    app.action(dv.ACTION_APPROVE, middleware=[may_decide])(decide)
    app.action(dv.ACTION_REJECT, middleware=[may_decide])(decide)
    return {"drill": handle}
