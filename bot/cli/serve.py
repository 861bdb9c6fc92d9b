"""`hvbot serve`: the Bolt app over HTTP (`POST /slack/events`), or Socket Mode when SLACK_APP_TOKEN is set."""

from __future__ import annotations

import logging

import click
import redis

from bot.adapters.http import BoltHTTPServer
from bot.adapters.http_checks import RequestChecks
from bot.adapters.socket_mode import CheckedSocketModeHandler
from bot.app import build_app
from bot.logs import configure_logging
from bot.middleware.replay import ReplayCache
from bot.runtime import AbandonedJobWatcher
from bot.settings import Settings

log = logging.getLogger("hvbot.serve")


@click.command("serve")
@click.option("--port", default=3000, show_default=True, help="HTTP port (/slack/events, /healthz, /readyz)")
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

    def ready() -> bool:
        try:
            return bool(runtime.redis.ping())
        except redis.RedisError:
            return False

    if settings.slack_app_token is not None:
        health = BoltHTTPServer(None, bind, port, ready).start()  # Socket Mode has no HTTP side: health only
        log.info("hvbot serve: Socket Mode (health on port %d)", health.port)
        handler = CheckedSocketModeHandler(app, settings.secret("slack_app_token"), web_client=runtime.client)
        handler.start()  # type: ignore[no-untyped-call]
        return
    checks = RequestChecks(settings.secret("slack_signing_secret"), ReplayCache(runtime.redis))
    server = BoltHTTPServer(app, bind, port, ready, checks=checks)
    log.info("hvbot serve: HTTP mode on port %d, POST /slack/events", server.port)
    click.echo(f"hvbot serve: listening on {bind}:{server.port} (POST /slack/events, GET /healthz)", err=True)
    server.serve_forever()
