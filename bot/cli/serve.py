"""`hvbot serve`: the Bolt app over HTTP (`POST /slack/events`), or Socket Mode when SLACK_APP_TOKEN is set."""

from __future__ import annotations

import logging

import click

from bot.adapters.http import BoltHTTPServer
from bot.adapters.http_checks import RequestChecks
from bot.adapters.socket_mode import CheckedSocketModeHandler
from bot.app import build_app
from bot.cli.metrics import exposition, process_registry, redis_ready
from bot.logs import configure_logging
from bot.metrics import SocketModeCollector
from bot.middleware.replay import ReplayCache
from bot.runtime import AbandonedJobWatcher
from bot.settings import Settings

log = logging.getLogger("hvbot.serve")


@click.command("serve")
@click.option("--port", default=3000, show_default=True,
              help="HTTP port (/slack/events, /healthz, /readyz, /metrics; Socket Mode: all but the first)")
@click.option("--host", "bind", default="0.0.0.0", show_default=True, help="address to listen on")
def serve_command(port: int, bind: str) -> None:
    """Run the Slack app: HTTP mode, or Socket Mode when SLACK_APP_TOKEN is set."""
    settings = Settings()
    configure_logging(settings.log_json)
    if settings.slack_bot_token is None:
        raise click.ClickException("SLACK_BOT_TOKEN is not set (see README, Settings).")
    if settings.slack_app_token is None and settings.slack_signing_secret is None:
        raise click.ClickException("HTTP mode needs SLACK_SIGNING_SECRET; or set SLACK_APP_TOKEN for Socket Mode.")
    try:
        app = build_app(settings)  # calls Slack auth.test once: a wrong token or URL stops here
    except Exception as exc:  # noqa: BLE001 - one clear line instead of a traceback
        raise click.ClickException(f"cannot start: Slack auth.test at {settings.api_base_url()} failed: "
                                   f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
    runtime = app.runtime  # type: ignore[attr-defined]
    AbandonedJobWatcher(runtime).start()

    ready = redis_ready(runtime.redis)
    if settings.slack_app_token is not None:
        handler = CheckedSocketModeHandler(app, settings.secret("slack_app_token"), web_client=runtime.client)
        registry = process_registry([SocketModeCollector(handler.connected)])
        # Socket Mode has no HTTP side: health and metrics only; ready only while the socket is connected
        health = BoltHTTPServer(None, bind, port, lambda: handler.connected() and ready(),
                                metrics=exposition(registry),
                                not_ready="not ready: Socket Mode is not connected to Slack, or Redis is unreachable")
        health.start()
        log.info("hvbot serve: Socket Mode (health and metrics on port %d)", health.port)
        handler.start()  # type: ignore[no-untyped-call]
        return
    checks = RequestChecks(settings.secret("slack_signing_secret"), ReplayCache(runtime.redis))
    server = BoltHTTPServer(app, bind, port, ready, checks=checks, metrics=exposition(process_registry()))
    log.info("hvbot serve: HTTP mode on port %d, POST /slack/events", server.port)
    click.echo(f"hvbot serve: listening on {bind}:{server.port} (POST /slack/events, GET /healthz)", err=True)
    server.serve_forever()
