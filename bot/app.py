"""The Bolt app: `/hyperv` and the result buttons. Transport-free; serve/console/tests all dispatch into it."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.views import common as views
from bot.grammar import VIEWER
from bot.listeners.commands import handle_command
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings

log = logging.getLogger("hvbot.app")
COMMAND = "/hyperv"
LISTENER_THREADS = 8  # Bolt's default is 5; a few more so post-ack work (CSV uploads) cannot hold up acks


def build_app(settings: Settings, runtime: Runtime | None = None, verify_token: bool = True) -> App:
    runtime = runtime or build_runtime(settings)
    app = App(
        client=runtime.client,
        signing_secret=settings.secret("slack_signing_secret") or None,
        token_verification_enabled=verify_token and bool(settings.slack_bot_token),
        listener_executor=ThreadPoolExecutor(max_workers=LISTENER_THREADS, thread_name_prefix="hvbot-listener"),
        # Our ack listeners only parse, authorize and enqueue (~1 ms), so run them in the request thread and answer
        # as soon as they return, instead of Bolt's 10 ms ack polling. Slow follow-up work runs as lazy listeners.
        process_before_response=True,
    )
    app.runtime = runtime  # type: ignore[attr-defined]  # the console and tests reach the same parts

    @app.command(COMMAND)
    def hyperv(ack: Ack, body: dict[str, Any]) -> None:
        try:
            view = handle_command(runtime, body)
        except Exception:  # a bug must still give the user an answer, not Slack's "operation_timeout"
            log.exception("/hyperv handler failed")
            view = views.notice("hvbot hit an internal error; nothing was started. The admins can find it in the log.")
        ack(text=view.text, blocks=view.blocks)

    def ack_only(ack: Ack) -> None:
        ack()

    def show_page(body: dict[str, Any], action: dict[str, Any], respond: Respond, client: WebClient) -> None:
        _show_page(runtime, body, action, respond, client)

    def send_csv(body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        _send_csv(runtime, body, action, respond)

    for action_id in (f"{views.ACTION_PAGE}_prev", f"{views.ACTION_PAGE}_next"):
        app.action(action_id)(ack=ack_only, lazy=[show_page])
    app.action(views.ACTION_CSV)(ack=ack_only, lazy=[send_csv])
    from bot.listeners import failover as failover_flow

    failover_flow.register(app, runtime)
    from bot.listeners import monitor as monitor_commands

    monitor_commands.register(app, runtime)
    from bot.listeners import backup as backup_flow

    backup_flow.register(app, runtime)
    from bot.listeners import teaming as teaming_flow

    teaming_flow.register(app, runtime)

    return app


def _clicker_may_view(runtime: Runtime, body: dict[str, Any], respond: Respond) -> bool:
    user = body.get("user", {}).get("id", "")
    channel = (body.get("channel") or {}).get("id", "") or body.get("container", {}).get("channel_id", "")
    decision = runtime.authz.check(user, channel, VIEWER, "results")
    if not decision.allowed:
        respond(text=decision.reason, response_type="ephemeral", replace_original=False)
    return decision.allowed


def _show_page(runtime: Runtime, body: dict[str, Any], action: dict[str, Any], respond: Respond, client: WebClient) -> None:
    if not _clicker_may_view(runtime, body, respond):
        return
    job_id, _, rest = str(action.get("value", "")).partition(":")
    page, _, per = rest.partition(":")
    stored = runtime.reporter.load_result(job_id)
    if stored is None or not page.isdigit():
        respond(text="This result has expired; run the command again.", response_type="ephemeral",
                replace_original=False)
        return
    rows_per_page = int(per) if per.isdigit() and int(per) > 0 else runtime.settings.rows_per_page
    view = views.result(stored["command"], job_id, stored["report"], int(page), rows_per_page)
    container = body.get("container", {})
    if container.get("is_ephemeral") or not container.get("message_ts"):
        respond(text=view.text, blocks=view.blocks, replace_original=True, response_type="ephemeral")
    else:
        client.chat_update(channel=container["channel_id"], ts=container["message_ts"], text=view.text,
                           blocks=view.blocks)


def _send_csv(runtime: Runtime, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
    if not _clicker_may_view(runtime, body, respond):
        return
    job_id = str(action.get("value", ""))
    container = body.get("container", {})
    if container.get("is_ephemeral") or not container.get("message_ts"):
        # an ephemeral answer has no thread: send the file to the clicker's DM instead
        channel, thread = runtime.reporter.dm_channel(body["user"]["id"]), None
    else:
        channel, thread = container["channel_id"], container["message_ts"]
    if not runtime.reporter.upload_csv(job_id, channel, thread):
        respond(text="This result has expired; run the command again.", response_type="ephemeral",
                replace_original=False)
