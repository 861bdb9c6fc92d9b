"""`hvbot demo`: the lab's default fleet, a worker, the monitor and the console in one process. No Slack, no Windows.

`--tour` plays the seed story instead of reading input (`bot.cli.demo_tour`).

Redis: REDIS_URL when it answers; else a private `redis-server` if installed; else fakeredis in-process.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TextIO

import click
import redis
from pydantic import SecretStr

from bot.adapters.console import Console, run_lines, start_worker_thread
from bot.adapters.console_lab import LabControl
from bot.adapters.console_wait import Outstanding, TrackedExecutor
from bot.adapters.fake_slack import FakeSlack
from bot.app import LISTENER_THREADS, build_app
from bot.cli.demo_monitor import demo_monitor, demo_monitor_settings, is_monitor_job
from bot.cli.demo_tour import play_tour
from bot.cli.reporters import reporters_installed
from bot.logs import configure_logging
from bot.redis_client import CHAT, WORKER, connect, describe
from bot.runtime import build_runtime
from bot.settings import Settings
from jobs.hyperv.hosts import load_inventory
from lab.fleet import Lab
from lab.fleet_file import default_fleet, load_fleet
from lab.site_fleet import site_fleet as lab_site_fleet

DEMO_TOKEN = "xoxb-demo-not-a-real-token"


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except (redis.RedisError, ValueError):
        return False


@contextmanager
def private_redis_server() -> Iterator[str]:
    workdir = tempfile.mkdtemp(prefix="hvbot-redis-")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while not _answers(url):  # redis-server binds within milliseconds; give up after 10 s
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the private redis-server did not start")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def _configured_answers(settings: Settings) -> bool:
    probe = connect(settings, CHAT)
    try:
        return bool(probe.ping())
    except (redis.RedisError, ValueError):
        return False
    finally:
        probe.close()


def choose_redis(stack: ExitStack, url: str | None, settings: Settings | None = None,
                 private_first: bool = False) -> tuple[redis.Redis, str]:
    """A Redis connection and a sentence saying which Redis it is (the configured one first: REDIS_URL or the
    sentinels' master, with its password and TLS, when `settings` are given). `private_first`: a private
    redis-server when one is installed, whatever is configured (the tour must not meet another monitor or its
    alert state)."""
    configured_wanted = not (private_first and shutil.which("redis-server"))
    if configured_wanted and settings is not None and (settings.redis_sentinels or url):
        if _configured_answers(settings):
            return connect(settings, WORKER), f"Redis: {describe(settings)} (configured)"
    elif configured_wanted and url and _answers(url):
        return redis.Redis.from_url(url), f"Redis: {_safe(url)} (from REDIS_URL)"
    if shutil.which("redis-server"):
        private = stack.enter_context(private_redis_server())
        return redis.Redis.from_url(private), f"Redis: a private redis-server at {private}"
    import fakeredis

    return fakeredis.FakeRedis(), "Redis: fakeredis, an in-process stand-in (no redis-server installed)"


def _safe(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"  # never print a password


def demo_roles(settings: Settings) -> dict[str, list[str]]:
    """With no roles configured the demo casts two people, so failover and approval can be tried at once."""
    if settings.operators or settings.approvers:
        return {}
    return {"operators": ["U100"], "approvers": ["U200"]}


def quiet_pypsrp(stack: ExitStack) -> None:
    """pypsrp logs a hung host's read timeouts as errors with tracebacks; the chat already says the host did not
    answer, so they stay out of the terminal until the session ends."""
    logger = logging.getLogger("pypsrp")
    stack.callback(logger.setLevel, logger.level)
    logger.setLevel(logging.CRITICAL)


def demo_settings(settings: Settings, fake: FakeSlack) -> Settings:
    return settings.model_copy(update={
        "slack_bot_token": settings.slack_bot_token or SecretStr(DEMO_TOKEN),
        "slack_api_url": fake.api_url,
        "channel_post_interval_seconds": 0.0,
        # a fresh random key per demo session: approval buttons are HMAC-signed, never with a built-in constant
        "approval_secret": settings.approval_secret or SecretStr(secrets.token_hex(32)),
        **demo_roles(settings),
    })


@contextmanager
def console_session(settings: Settings, stdout: TextIO, redis_conn: redis.Redis | None = None,
                    monitor: bool = False, private_redis: bool = False) -> Iterator[Console]:
    """Fake Slack + Bolt app + worker thread (+ the monitor) and a console, against settings.inventory."""
    configure_logging(json_logs=False, level=logging.ERROR)  # the chat is the output; host warnings are in it
    with ExitStack() as stack:
        quiet_pypsrp(stack)
        if redis_conn is None:
            redis_conn, which = choose_redis(stack, settings.redis_url, settings, private_first=private_redis)
            stdout.write(which + "\n")
        fake = stack.enter_context(FakeSlack())
        settings = demo_settings(settings, fake)
        if monitor:
            settings = demo_monitor_settings(settings)
        if not (settings.operators or settings.approvers):
            stdout.write("Roles: you are U100 (operator); type `as U200` to act as the on-call approver\n")
        if settings.inventory is not None:  # the in-process worker reads it (jobs.hyperv.settings)
            os.environ["HVBOT_INVENTORY"] = str(settings.inventory)
        runtime = build_runtime(settings, connection=redis_conn)
        stack.enter_context(reporters_installed(runtime))
        executor = TrackedExecutor(LISTENER_THREADS, thread_name_prefix="hvbot-listener")
        stack.callback(executor.shutdown, wait=False)
        app = build_app(settings, runtime=runtime, listener_executor=executor)
        waits = Outstanding(redis_conn, runtime.intake, executor, ignore=is_monitor_job)
        stack.callback(waits.close)
        stack.callback(start_worker_thread(settings.queue, redis_conn).close)  # before a private Redis stops
        inventory = load_inventory(settings.inventory) if settings.inventory is not None else None
        monitoring = False
        if monitor and inventory is not None:
            monitoring, text = stack.enter_context(demo_monitor(settings, redis_conn, inventory.names))
            stdout.write(text + "\n")
        lab = LabControl(inventory.lab_control_url) if inventory and inventory.lab_control_url else None
        console = Console(app, fake, stdout, waits, answer_timeout=settings.demo_answer_timeout_seconds, lab=lab,
                          alert_channels=(settings.alert_critical_channel, settings.alert_warning_channel))
        console.monitoring = monitoring
        yield console


def run_session(settings: Settings, stdin: TextIO, stdout: TextIO, redis_conn: redis.Redis | None = None,
                monitor: bool = False) -> int:
    """Chat until the input ends; 1 when a piped line's answers did not all arrive within the limit, else 0."""
    with console_session(settings, stdout, redis_conn, monitor) as console:
        run_lines(console, stdin, interactive=stdin.isatty())
        return 1 if console.unanswered else 0


@click.command("demo")
@click.option("--https", is_flag=True, help="run the lab hosts over HTTPS")
@click.option("--fleet", "fleet_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML fleet file instead of the default fleet")
@click.option("--site-fleet", is_flag=True,
              help="a two-site fleet of 10 hosts and 240 replicated VMs with realistic boot times")
@click.option("--wait", "wait_s", type=click.FloatRange(min=0, min_open=True),
              help="seconds each piped line may take to answer before the demo exits 1 "
                   "[default: HVBOT_DEMO_ANSWER_TIMEOUT_SECONDS or 180]")
@click.option("--tour", is_flag=True, help="play the seed story (power cut, alert, failover, reverse), narrated; "
                                          "exit 0 only if every step behaved as told")
def demo_command(https: bool, fleet_file: Path | None, site_fleet: bool, wait_s: float | None, tour: bool) -> None:
    """The bot on the embedded lab fleet, chatting in this terminal (reads stdin when piped)."""
    if fleet_file is not None and site_fleet:
        raise click.UsageError("use --fleet or --site-fleet, not both")
    if tour and (fleet_file is not None or site_fleet):
        raise click.UsageError("--tour tells the default fleet's story (web01, site-a, site-b): "
                               "drop --fleet and --site-fleet")
    fleet = load_fleet(fleet_file) if fleet_file else lab_site_fleet() if site_fleet else default_fleet()
    out = sys.stdout
    with ExitStack() as stack:
        lab = stack.enter_context(Lab(fleet, https=https))
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hvbot-demo-")))
        inventory = lab.write_inventory(workdir / "inventory.yml")
        out.write(f"Lab: {len(lab.fleet.hosts)} simulated Hyper-V hosts ({', '.join(lab.fleet.hosts)})\n")
        settings = Settings(inventory=inventory, slack_signing_secret=None, slack_app_token=None)
        if "HVBOT_QUEUE" not in os.environ:  # keep demo jobs away from a real deployment's and other demos' queues
            settings = settings.model_copy(update={"queue": f"hvbot-demo-{secrets.token_hex(4)}"})
        if wait_s is not None:
            settings = settings.model_copy(update={"demo_answer_timeout_seconds": wait_s})
        if tour:
            with console_session(settings, out, monitor=True, private_redis=True) as console:
                code = play_tour(console)
        else:
            code = run_session(settings, sys.stdin, out, monitor=True)
    sys.exit(code)
