"""Backups and exports from chat: `/hyperv backup-check|backup-window|checkpoint|export`.

backup-check (viewer) is enqueued at once. The others change the fleet, so they answer with a confirm card
(`bot.views.backup.confirm_card`); the request waits in Redis (`BACKUP_PENDING_KEY`, one use, 15 min) until Run is
clicked, and the clicker's operator role and channel are checked again at click time, for Run and for the card's
Cancel alike. Cancel (exports) and the on-call alert's Retry / Resynchronize buttons need the operator role too,
carry one-use tokens, and their values are checked as typed arguments are. The jobs live in jobs.backup.tasks and
jobs.backup.export_tasks; every request's status is one channel message updated in place.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot.grammar import BACKUP_VERBS, MAX_WINDOW, OPERATOR, Command, exact_name, job_id, parse_at, parse_duration
from bot.listeners.verbs import Verbs
from bot.middleware.authorization import Gate, Needs, Requester
from bot.runtime import Runtime
from bot.views import backup as bv
from bot.views import common as views
from jobs import units
from jobs.audit import AuditEntry
from jobs.backup import export_tasks as export_jobs
from jobs.backup import tasks as backup_jobs
from jobs.backup.alert import load_alert
from jobs.backup.settings import BackupSettings
from jobs.keys import BACKUP_PENDING_KEY, EXPORT_CANCEL_KEY
from jobs.ports import ReplyTo
from jobs.queue import new_job_id

PENDING_TTL = 900


def handle(runtime: Runtime, command: Command, who: Requester, body: dict[str, Any]) -> views.View:
    """The ack of one backup/export command: the check is enqueued, the others get a confirm card."""
    user, channel = who.user, who.channel
    vm = command.args[0]
    if command.verb == "backup-check":
        key = new_job_id("bk")
        reply = ReplyTo(channel, user, command.canonical(), here=True).to_dict()
        backup_jobs.enqueue_backup_job(runtime.queue, backup_jobs.run_check,
                                       {"vm": vm, "key": key, "reply": reply, "attempt": 1,
                                        "heartbeat_seconds": runtime.settings.abandoned_check_seconds},
                                       f"{key}-1", runtime.settings.job_timeout_seconds)
        runtime.record(user, channel, command.canonical(), "accepted", "", key)
        return views.notice(f"Checking whether {vm} can be backed up; the answer is posted in this channel and "
                            "updated in place while hvbot retries.")
    request: dict[str, Any] = {"verb": command.verb, "args": list(command.args), "user": user, "channel": channel,
                               "command": command.canonical()}
    if "at" in command.extra:
        if command.args[1].lower() == "end":
            return views.notice("`--at` goes with a DURATION, not with `end`.")
        try:
            request["at"] = parse_at(command.extra["at"], datetime.now(UTC)).isoformat()
        except ValueError as err:
            return views.notice(f"{err}\nUsage: `/hyperv backup-window VM DURATION|end [--at TIME]`")
    request_id = secrets.token_hex(8)
    runtime.redis.set(BACKUP_PENDING_KEY.format(request_id), json.dumps(request), ex=PENDING_TTL)
    runtime.record(user, channel, command.canonical(), "confirm", "waiting for Run", request_id)
    return bv.confirm_card(describe(request), request_id)


def describe(request: dict[str, Any]) -> str:
    verb, args = request["verb"], request["args"]
    if verb == "backup-window" and args[1].lower() == "end":
        return f"End the backup window of {args[0]} now: resume replication and verify it."
    if verb == "backup-window":
        side = BackupSettings().pause_side.value
        when = f"at {units.when_and_age(units.parse_time(request['at']))}" if request.get("at") else "now"
        return (f"Pause replication of {args[0]} on the {side} side {when} for {args[1]}; it is resumed "
                "at the end of the window.")
    if verb == "checkpoint":
        return f"Create a checkpoint of {args[0]}" + (f" named '{args[1]}'." if len(args) > 1 else ".")
    return f"Export checkpoint '{args[1]}' of {args[0]} to {args[2]} on its host (a long job you can cancel)."


def run_needs(runtime: Runtime, verb: str = "") -> Callable[[dict[str, Any]], Needs]:
    """Run and Cancel of a pending request need an operator in an allowed channel; the refusal names the pending
    command (prefixed with `verb`)."""

    def needs(action: dict[str, Any]) -> Needs:
        raw = runtime.redis.get(BACKUP_PENDING_KEY.format(str(action.get("value", ""))))
        what = json.loads(raw)["command"] if raw else "backup request"
        return Needs(OPERATOR, f"{verb} {what}".strip(), audit=True)

    return needs


def export_cancel_needs(action: dict[str, Any]) -> Needs:
    key = job_id(str(action.get("value", "")))  # the export's key, checked as `cancel JOB` checks a job id
    return Needs(OPERATOR, f"cancel export {key}", audit=True, once=True)


def alert_action_needs(action: dict[str, Any]) -> Needs:
    return Needs(OPERATOR, alert_action_what(action), audit=True, once=True)


def alert_action_what(action: dict[str, Any]) -> str:
    """The on-call alert's value is the VM: one named exactly, as `backup-window VM` takes it."""
    resync = action.get("action_id") == bv.ACTION_ALERT_RESYNC
    vm = exact_name(str(action.get("value", "")))
    return f"backup-window {vm} {'resynchronize' if resync else 'retry resume'}"


def on_run(runtime: Runtime, who: Requester, action: dict[str, Any], respond: Respond) -> None:
    request_id = str(action.get("value", ""))
    user = who.user
    raw = runtime.redis.getdel(BACKUP_PENDING_KEY.format(request_id))  # one use: a double click runs it once
    if raw is None:
        respond(text="This request has expired or already ran; type the command again.",
                response_type="ephemeral", replace_original=False)
        return
    request = json.loads(raw)
    key = start(runtime, request, user)
    runtime.audit.record(AuditEntry(user, request["channel"], request["command"], "accepted", "confirmed", key))
    respond(text=f"Started `{request['command']}`; its status is posted in this channel.",
            response_type="ephemeral", replace_original=True)


def start(runtime: Runtime, request: dict[str, Any], user: str) -> str:
    """Enqueue (or schedule) the confirmed request; returns its message key."""
    verb, args = request["verb"], request["args"]
    beat = runtime.settings.abandoned_check_seconds
    timeout = runtime.settings.job_timeout_seconds
    reply = ReplyTo(request["channel"], user, request["command"], here=True).to_dict()
    prefix = {"backup-window": "bw", "checkpoint": "cp", "export": "ex"}[verb]
    key = new_job_id(prefix)
    base = {"vm": args[0], "key": key, "reply": reply, "heartbeat_seconds": beat}
    if verb == "export":
        backup_jobs.enqueue_backup_job(runtime.queue, export_jobs.run_export,
                                       {**base, "checkpoint": args[1], "path": args[2]}, key,
                                       export_jobs.job_timeout(BackupSettings()))
    elif verb == "checkpoint":
        backup_jobs.enqueue_backup_job(runtime.queue, backup_jobs.run_checkpoint,
                                       {**base, "name": args[1] if len(args) > 1 else None}, key, timeout)
    elif args[1].lower() == "end":
        backup_jobs.enqueue_backup_job(runtime.queue, backup_jobs.run_window_end, {**base, "user": user}, key,
                                       timeout)
    else:
        _start_window(runtime, request, base, user, key)
    return key


def _start_window(runtime: Runtime, request: dict[str, Any], base: dict[str, Any], user: str, key: str) -> None:
    seconds = int(parse_duration(request["args"][1], MAX_WINDOW).total_seconds())
    at = datetime.fromisoformat(request["at"]) if request.get("at") else None
    kwargs = {**base, "seconds": seconds, "user": user}
    backup_jobs.enqueue_backup_job(runtime.queue, backup_jobs.run_window_start, kwargs, key,
                                   runtime.settings.job_timeout_seconds, at=at)
    if at is not None:
        backup_jobs.remember_window_message(runtime.redis, base["vm"], key, base["reply"], start_job=key)
        runtime.reporter.update(key, ReplyTo.from_dict(base["reply"]), (
            f":calendar: *backup-window {base['vm']}*: replication will be paused at "
            f"{at.astimezone(UTC):%Y-%m-%d %H:%M UTC} for {request['args'][1]} (requested by <@{user}>)."))


def on_dismiss(runtime: Runtime, who: Requester, request_id: str, respond: Respond) -> None:
    """Cancel of a confirm card: the pending request is deleted once; a second Cancel (or one after Run) says so."""
    raw = runtime.redis.getdel(BACKUP_PENDING_KEY.format(request_id))
    if raw is None:
        respond(text="This request was already run or cancelled (or it expired); nothing to cancel.",
                response_type="ephemeral", replace_original=False)
        return
    runtime.record(who.user, who.channel, json.loads(raw)["command"], "cancelled", "confirm card cancelled",
                   request_id)
    respond(delete_original=True)


def on_export_cancel(runtime: Runtime, who: Requester, key: str, respond: Respond) -> None:
    runtime.redis.set(EXPORT_CANCEL_KEY.format(key), who.user, ex=86400)  # read by the job after each poll
    runtime.record(who.user, who.channel, f"cancel export {key}", "cancelled", "", key)
    respond(text="Cancelling the export; the message says when it stopped.", response_type="ephemeral",
            replace_original=False)


def on_alert_action(runtime: Runtime, who: Requester, body: dict[str, Any], action: dict[str, Any]) -> None:
    """Retry / Resynchronize; `action` carries the value without its token (the gate spent it)."""
    vm, user = exact_name(str(action.get("value", ""))), who.user
    resync = action.get("action_id") == bv.ACTION_ALERT_RESYNC
    what = alert_action_what(action)
    alert = load_alert(runtime.redis, vm)
    container = body.get("container", {})
    key = str(alert["id"]) if alert else f"bkalert-{vm}-{secrets.token_hex(3)}"
    reply = ReplyTo(str(container.get("channel_id") or who.channel), user, what, here=True).to_dict()
    job_id = new_job_id("ba")
    backup_jobs.enqueue_backup_job(runtime.queue, backup_jobs.run_alert_action,
                                   {"vm": vm, "resync": resync, "key": key, "reply": reply, "user": user,
                                    "heartbeat_seconds": runtime.settings.abandoned_check_seconds},
                                   job_id, runtime.settings.job_timeout_seconds)
    runtime.record(user, reply["channel"], what, "accepted", "", job_id)


def register(app: App, runtime: Runtime, gate: Gate) -> Verbs:
    def run(ack: Ack, context: BoltContext, action: dict[str, Any], respond: Respond) -> None:
        ack()  # first: Slack's 3 s; what follows is a few Redis calls
        on_run(runtime, context["requester"], action, respond)

    def dismiss(ack: Ack, context: BoltContext, respond: Respond) -> None:
        ack()
        on_dismiss(runtime, context["requester"], context["value"], respond)

    def cancel(ack: Ack, context: BoltContext, respond: Respond) -> None:
        ack()
        on_export_cancel(runtime, context["requester"], context["value"], respond)

    def alert(ack: Ack, context: BoltContext, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        on_alert_action(runtime, context["requester"], body, {**action, "value": context["value"]})

    may_cancel = gate.click(export_cancel_needs)
    may_alert = gate.click(alert_action_needs)
    app.action(bv.ACTION_RUN, middleware=[gate.click(run_needs(runtime))])(run)
    app.action(bv.ACTION_DISMISS, middleware=[gate.click(run_needs(runtime, "cancel"))])(dismiss)
    app.action(bv.ACTION_EXPORT_CANCEL, middleware=[may_cancel])(cancel)
    app.action(bv.ACTION_ALERT_RETRY, middleware=[may_alert])(alert)
    app.action(bv.ACTION_ALERT_RESYNC, middleware=[may_alert])(alert)
    return {verb: handle for verb in BACKUP_VERBS}
