"""`hvbot worker`: an RQ worker with hvbot's settings (JSON serializer, scheduler on) posting to Slack."""

from __future__ import annotations

import click
import redis
from rq import SimpleWorker, Worker
from rq.serializers import JSONSerializer
from rq.worker import BaseWorker

from bot.cli.reporters import install_reporters
from bot.logs import configure_logging
from bot.runtime import AbandonedJobWatcher, build_runtime
from bot.settings import Settings
from jobs.housekeeping import run_housekeeping
from jobs.hyperv.process_fleet import warm_fleet_in_background


def make_worker(settings: Settings, connection: redis.Redis, simple: bool = False, name: str | None = None) -> BaseWorker:
    cls: type[BaseWorker] = SimpleWorker if simple else Worker
    return cls([settings.queue], connection=connection, serializer=JSONSerializer, name=name)


def _housekeeping_at_start(connection: redis.Redis) -> None:
    """Chores run once at every worker start, so promises (e.g. backup-window resumes) hold without the monitor."""
    from datetime import UTC, datetime

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
    configure_logging(settings.log_json)
    runtime = build_runtime(settings, connection=redis.Redis.from_url(settings.redis_url))
    install_reporters(runtime)  # before forking: work horses inherit them
    _housekeeping_at_start(runtime.redis)
    if simple and warm:
        warm_fleet_in_background()  # forked work horses cannot reuse their parent's sessions: simple only
    watcher = AbandonedJobWatcher(runtime).start()
    try:
        make_worker(settings, runtime.redis, simple=simple, name=name).work(with_scheduler=True, burst=burst)
    finally:
        watcher.stop()
