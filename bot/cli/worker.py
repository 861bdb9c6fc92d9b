"""`hvbot worker`: an RQ worker with hvbot's settings (JSON serializer, scheduler on) posting to Slack.

It rides out a Redis restart: its client retries for about a minute (`bot.cli.connections`), and it registers
itself again when Redis comes back without its data (`jobs.workers`), so `rq info` and `hvbot check-config` see it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click
import redis
from rq.serializers import JSONSerializer

from bot.cli.connections import worker_redis
from bot.cli.metrics import (
    multiprocess_dir,
    process_registry,
    redis_ready,
    remove_owned_dir,
    restart_in_multiprocess_mode,
    serve_metrics,
)
from bot.cli.reporters import install_reporters
from bot.logs import configure_logging
from bot.runtime import AbandonedJobWatcher, build_runtime, redis_connection
from bot.settings import Settings
from jobs.housekeeping import run_housekeeping
from jobs.hyperv.process_fleet import warm_fleet_in_background
from jobs.workers import HvbotSimpleWorker, HvbotWorker, RegistrationKeeper, ReRegistering


def make_worker(settings: Settings, connection: redis.Redis, simple: bool = False,
                name: str | None = None) -> ReRegistering:
    cls: type[ReRegistering] = HvbotSimpleWorker if simple else HvbotWorker
    return cls([settings.queue], connection=connection, serializer=JSONSerializer, name=name)


def _housekeeping_at_start(connection: redis.Redis) -> None:
    """Chores run once at every worker start, so promises (e.g. backup-window resumes) hold without the monitor."""
    try:
        run_housekeeping(connection, datetime.now(UTC))
    except redis.RedisError:
        pass  # Redis down: the worker cannot work either; RQ reports that itself


@click.command("worker")
@click.option("--burst", is_flag=True, help="exit when the queue is empty")
@click.option("--simple", is_flag=True, help="run jobs in this process (no fork per job)")
@click.option("--name", default=None, help="worker name (default: RQ's)")
@click.option("--warm/--no-warm", default=True, show_default=True,
              help="with --simple: open every inventory host's session at start, not on first use")
def worker_command(burst: bool, simple: bool, name: str | None, warm: bool) -> None:
    """Run an RQ worker for hvbot's queue, with the scheduler on."""
    settings = Settings()
    if settings.metrics_port and not simple and multiprocess_dir() is None:
        restart_in_multiprocess_mode()  # forked work horses' counters must reach /metrics (bot/cli/metrics.py)
    configure_logging(settings.log_json)
    runtime = build_runtime(settings, connection=worker_redis(settings))
    # /readyz pings through a quick-failing client: the worker's own rides out a minute of outage per command
    ready = redis_ready(redis_connection(settings))
    metrics = serve_metrics(settings, process_registry(), ready) if settings.metrics_port else None
    install_reporters(runtime)  # before forking: work horses inherit them
    _housekeeping_at_start(runtime.redis)
    if simple and warm:
        warm_fleet_in_background()  # forked work horses cannot reuse their parent's sessions: simple only
    watcher = AbandonedJobWatcher(runtime).start()
    worker = make_worker(settings, runtime.redis, simple=simple, name=name)
    keeper = RegistrationKeeper(worker, settings.worker_registration_check_seconds).start()
    try:
        worker.work(with_scheduler=True, burst=burst)
    finally:
        keeper.stop()
        watcher.stop()
        if metrics is not None:
            metrics.stop()
        remove_owned_dir()
