"""`hvbot monitor`: the single replica-health monitor (sweeps, housekeeping, alert timers), posting to Slack.

It outlives Redis: the start waits for Redis with backoff, and the loop (`jobs.monitor.loop`) turns a Redis error
into a skipped round. `hvbot monitor --health` reads the heartbeat the running monitor writes and exits 0 when it
is fresh, 1 otherwise: a container health check.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import click
import redis
from rq import Queue
from rq.serializers import JSONSerializer

from bot.adapters.http import BoltHTTPServer
from bot.cli.connections import monitor_redis
from bot.cli.metrics import process_registry, redis_ready, serve_metrics
from bot.cli.reporters import install_reporters
from bot.delivery.alert_routing import alert_rules
from bot.delivery.home import HomeRefresher
from bot.listeners.home import publisher as home_publisher
from bot.logs import configure_logging
from bot.runtime import build_runtime, redis_connection
from bot.settings import Settings
from jobs import ports as reporting
from jobs import units
from jobs.hyperv.hosts import load_inventory
from jobs.monitor import heartbeat
from jobs.monitor.loop import LeaseLost, Monitor, MonitorAlreadyRunning, MonitorLease, backoff_s
from jobs.monitor.state import AlertEngine
from jobs.state_metrics import RedisStateCollector

MAX_BACKOFF_S = 30.0


def build_monitor(settings: Settings, connection: redis.Redis, hosts: list[str], **overrides: Any) -> Monitor:
    """The monitor, delivering its timed notifications through the installed alert poster."""
    engine = AlertEngine(connection, rules=alert_rules(settings))
    return Monitor(
        client=connection, queue=Queue(settings.queue, connection=connection, serializer=JSONSerializer),
        hosts=hosts, engine=engine, deliver=reporting.current_poster().deliver,
        interval_s=settings.sweep_interval_seconds, hosts_per_job=settings.sweep_hosts_per_job,
        **overrides,
    )


def inventory_hosts(settings: Settings) -> list[str]:
    if settings.inventory is None:
        raise click.ClickException("HVBOT_INVENTORY is not set: the monitor sweeps the hosts of the inventory.")
    return load_inventory(settings.inventory).names


def acquire_when_redis_answers(lease: MonitorLease, stop: threading.Event, first_wait_s: float,
                               standby: bool = False) -> bool:
    """Take the lease, waiting out a Redis outage with backoff; False when stopped first. A standby waits while
    another monitor holds the lease, trying every `first_wait_s`, and takes it once that monitor's lease lapses."""
    failures, announced = 0, False
    while not stop.is_set():
        try:
            lease.acquire()
            return True
        except MonitorAlreadyRunning:
            if not standby:
                raise
            if not announced:
                click.echo(f"hvbot monitor (standby): {lease.other_holder()} holds the lease; taking over when it "
                           "stops renewing it", err=True)
                announced = True
            failures = 0
            stop.wait(first_wait_s)
        except redis.RedisError as exc:
            failures += 1
            delay = backoff_s(failures, first_wait_s, MAX_BACKOFF_S)
            click.echo(f"hvbot monitor: Redis unreachable ({type(exc).__name__}); retrying in {delay:.1f} s",
                       err=True)
            stop.wait(delay)
    return False


def health_check(settings: Settings) -> None:
    """Exit 0 when the monitor's heartbeat is fresh, 1 otherwise, with one line saying why."""
    try:
        fresh, text = heartbeat.status_line(monitor_redis(settings), time.time())
    except redis.RedisError as exc:
        click.echo(f"unhealthy: cannot read the monitor heartbeat, Redis unreachable ({type(exc).__name__})")
        raise SystemExit(1) from None
    click.echo(f"{'healthy' if fresh else 'unhealthy'}: {text}")
    raise SystemExit(0 if fresh else 1)


def monitor_metrics(settings: Settings) -> BoltHTTPServer:
    """/metrics of the lease holder: the fleet's gauges, read from Redis at scrape time, come from this one process.
    They read through the chat handlers' quick-failing client, so a scrape during an outage answers
    `hvbot_redis_up 0` within a few seconds (inside Prometheus's scrape timeout) instead of riding it out."""
    scraped = redis_connection(settings)
    registry = process_registry([RedisStateCollector(scraped, [settings.queue])])
    return serve_metrics(settings, registry, redis_ready(scraped))


@click.command("monitor")
@click.option("--tick", "tick_s", default=5.0, show_default=True, help="seconds between alert timer runs")
@click.option("--standby", is_flag=True,
              help="while another monitor runs, wait and take over when it stops, instead of exiting")
@click.option("--health", is_flag=True,
              help="do not monitor: exit 0 if the running monitor's heartbeat is fresh, else 1 (a health check)")
def monitor_command(tick_s: float, health: bool, standby: bool) -> None:
    """Sweep replica health of every host, post alerts; exactly one monitor runs (a Redis lease)."""
    settings = Settings()
    if health:
        health_check(settings)
    configure_logging(settings.log_json)
    connection = monitor_redis(settings)
    hosts = inventory_hosts(settings)
    # housekeeping tells users through these (abandoned jobs, dead failovers, expired approvals)
    runtime = build_runtime(settings, connection=connection)
    install_reporters(runtime)
    lease = MonitorLease(connection, ttl_s=max(3 * tick_s, settings.monitor_lease_seconds))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if not acquire_when_redis_answers(lease, stop, tick_s, standby=standby):
            return
    except MonitorAlreadyRunning as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"hvbot monitor: {units.plural(len(hosts), 'host')}, a sweep every {settings.sweep_interval_seconds:g} s",
               err=True)
    metrics = monitor_metrics(settings) if settings.metrics_port else None
    home = HomeRefresher(home_publisher(runtime), tick_s).start()  # App Home views follow the sweeps
    try:
        build_monitor(settings, connection, hosts).run_forever(lease, stop, tick_s=tick_s, max_backoff_s=MAX_BACKOFF_S)
    except LeaseLost as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass
    finally:
        if metrics is not None:
            metrics.stop()
        home.stop()
        try:
            lease.release()
        except redis.RedisError:
            pass  # Redis down at exit: the lease expires by itself after its TTL
