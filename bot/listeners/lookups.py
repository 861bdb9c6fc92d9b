"""Fleet lookups from chat (`ips`, `vms`, `memory`, `checkpoints`, `points`, and `teaming VM`): acked at once,
queued right after (bot/intake.py), answered by the worker; plus the result's paging and CSV buttons."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.grammar import VIEWER, Command
from bot.listeners.verbs import Verbs
from bot.middleware.authorization import Gate, Needs, Requester
from bot.runtime import Runtime
from bot.views import common as views
from jobs.ports import ReplyTo
from jobs.queue import new_job_id

REDIS_DOWN = (
    "hvbot cannot reach its job queue (Redis) right now, so nothing was started. "
    "Please try again in a minute; if this persists, tell the hvbot admins."
)
EXPIRED = "This result has expired; run the command again."


def lookup(runtime: Runtime, command: Command, who: Requester, body: dict[str, Any]) -> views.View:
    """Queue a read-only fleet lookup after the ack; the answer goes to the requester (or the channel, --here)."""
    reply = ReplyTo(channel=who.channel, user=who.user, command=command.canonical(),
                    response_url=str(body.get("response_url", "")), here=command.here)
    if not runtime.intake.redis_up():
        return views.notice(REDIS_DOWN)
    job_id = new_job_id()
    runtime.intake.submit(lambda: runtime.enqueue_lookup(command, reply, job_id), reply.response_url,
                          command.canonical())
    if command.here:
        return views.notice(f"Queued `{command.canonical()}` as job {job_id}; the answer will be posted here.")
    return views.working(command.canonical(), job_id)


def show_page(runtime: Runtime, body: dict[str, Any], action: dict[str, Any], respond: Respond,
              client: WebClient) -> None:
    job_id, _, rest = str(action.get("value", "")).partition(":")
    page, _, per = rest.partition(":")
    stored = runtime.reporter.load_result(job_id)
    if stored is None or not page.isdigit():
        respond(text=EXPIRED, response_type="ephemeral", replace_original=False)
        return
    rows_per_page = int(per) if per.isdigit() and int(per) > 0 else runtime.settings.rows_per_page
    view = views.result(stored["command"], job_id, stored["report"], int(page), rows_per_page)
    container = body.get("container", {})
    if container.get("is_ephemeral") or not container.get("message_ts"):
        respond(text=view.text, blocks=view.blocks, replace_original=True, response_type="ephemeral")
    else:
        client.chat_update(channel=container["channel_id"], ts=container["message_ts"], text=view.text,
                           blocks=view.blocks)


def send_csv(runtime: Runtime, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
    job_id = str(action.get("value", ""))
    container = body.get("container", {})
    if container.get("is_ephemeral") or not container.get("message_ts"):
        # an ephemeral answer has no thread: send the file to the clicker's DM instead
        channel, thread = runtime.reporter.dm_channel(body["user"]["id"]), None
    else:
        channel, thread = container["channel_id"], container["message_ts"]
    if not runtime.reporter.upload_csv(job_id, channel, thread):
        respond(text=EXPIRED, response_type="ephemeral", replace_original=False)


def register(app: App, runtime: Runtime, gate: Gate) -> Verbs:
    may_view = [gate.click(Needs(VIEWER, "results"))]

    def ack_only(ack: Ack) -> None:
        ack()

    def page(body: dict[str, Any], action: dict[str, Any], respond: Respond, client: WebClient) -> None:
        show_page(runtime, body, action, respond, client)

    def csv(body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        send_csv(runtime, body, action, respond)

    for action_id in (f"{views.ACTION_PAGE}_prev", f"{views.ACTION_PAGE}_next"):
        app.action(action_id, middleware=may_view)(ack=ack_only, lazy=[page])
    app.action(views.ACTION_CSV, middleware=may_view)(ack=ack_only, lazy=[csv])
    return {verb: lookup for verb in ("ips", "vms", "memory", "checkpoints", "points")}
