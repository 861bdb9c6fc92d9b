"""The Bolt app: `/hyperv` and every button. Transport-free; serve, console and tests all dispatch into it.

Each feature module in `bot.listeners` registers its buttons and returns its verbs; `/hyperv` passes through the
authorization gate (grammar, channel, role) and then calls the verb's listener.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
import structlog
from slack_bolt import Ack, App, BoltContext

from bot.grammar import VERBS
from bot.listeners import backup, drill, failover, home, jobs, lookups, monitor, recovery, site_failover, teaming
from bot.listeners.recovery_run import register_follow_ups, register_resume
from bot.listeners.verbs import Verbs
from bot.metrics import count_command
from bot.middleware.authorization import Gate, slash_text
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from bot.views import common as views

log = logging.getLogger("hvbot.app")
COMMAND = "/hyperv"
LISTENER_THREADS = 8  # Bolt's default is 5; a few more so post-ack work (CSV uploads) cannot hold up acks
# site_failover after failover: it takes over the `failover` verb and routes the single-VM forms back to failover
FEATURES = (jobs, lookups, teaming, failover, site_failover, backup, monitor, recovery, drill, home)
INTERNAL_ERROR = "hvbot hit an internal error; nothing was started. The admins can find it in the log."


def build_app(settings: Settings, runtime: Runtime | None = None, verify_token: bool = True,
              listener_executor: ThreadPoolExecutor | None = None) -> App:
    """`listener_executor` runs the lazy listeners (default: a pool of LISTENER_THREADS); the console passes one
    that counts them, to wait for a button's follow-ups."""
    runtime = runtime or build_runtime(settings)
    listener_executor = listener_executor or ThreadPoolExecutor(max_workers=LISTENER_THREADS,
                                                                thread_name_prefix="hvbot-listener")
    runtime.follow_ups = listener_executor
    app = App(
        client=runtime.client,
        signing_secret=settings.secret("slack_signing_secret") or None,
        token_verification_enabled=verify_token and bool(settings.slack_bot_token),
        listener_executor=listener_executor,
        # Our ack listeners only parse, authorize and enqueue (~1 ms), so run them in the request thread and answer
        # as soon as they return, instead of Bolt's 10 ms ack polling. Slow follow-up work runs as lazy listeners.
        process_before_response=True,
    )
    app.runtime = runtime  # type: ignore[attr-defined]  # the console and tests reach the same parts
    gate = Gate(runtime.authz, runtime.record, runtime.redis)
    verbs: Verbs = {}

    # Registered first: Bolt tries listeners in order, and /hyperv is most of the traffic and must ack fastest.
    @app.command(COMMAND, middleware=[gate.command(slash_text)])
    def hyperv(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
        view = answer(runtime, verbs, body, context)
        ack(text=view.text, blocks=view.blocks)

    for feature in FEATURES:
        verbs.update(feature.register(app, runtime, gate))
    register_follow_ups(app, gate, lambda body, context: answer(runtime, verbs, body, context))
    register_resume(app, runtime, gate)
    missing = sorted(set(VERBS) - set(verbs))
    if missing:  # the grammar and the listeners must agree: fail at start-up, not at the first request
        raise RuntimeError(f"/hyperv verbs without a listener: {', '.join(missing)}")
    return app


def answer(runtime: Runtime, verbs: Verbs, body: dict[str, Any], context: BoltContext) -> views.View:
    """The immediate answer (the ack) to one authorized /hyperv request."""
    command, who = context["command"], context["requester"]
    outcome = "ok"
    try:
        with structlog.contextvars.bound_contextvars(slack_user=who.user, command=command.verb):
            return verbs[command.verb](runtime, command, who, body)
    except redis.RedisError:
        outcome = "redis_down"
        log.warning("Redis unreachable while handling %s", command.verb)
        return views.notice(lookups.REDIS_DOWN)
    except Exception:  # a bug must still give the user an answer, not Slack's "operation_timeout"
        outcome = "error"
        log.exception("/hyperv handler failed")
        return views.notice(INTERNAL_ERROR)
    finally:
        count_command(command.verb, outcome)
