"""`hvbot monitor`: the single replica-health monitor (sweeps, housekeeping, alert timers), posting to Slack."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click
import redis
from rq import Queue
from rq.serializers import JSONSerializer

from bot.cli.reporters import install_reporters
from bot.delivery.alert_routing import alert_rules
from bot.logs import configure_logging
from bot.runtime import build_runtime
from bot.settings import Settings
from jobs import ports as reporting
from jobs.hyperv.hosts import load_inventory
from jobs.monitor.loop import Monitor, MonitorAlreadyRunning, MonitorLease
from jobs.monitor.state import AlertEngine


def build_monitor(settings: Settings, connection: redis.Redis, hosts: list[str], **overrides: Any) -> Monitor:
    """The monitor, delivering its timed notifications through the installed alert poster."""
    engine = AlertEngine(connection, rules=alert_rules(settings))
    return Monitor(
        client=connection, queue=Queue(settings.queue, connection=connection, serializer=JSONSerializer),
        hosts=hosts, engine=engine, deliver=reporting.current_poster().deliver,
        interval_s=settings.sweep_interval_seconds, **overrides,
    )


def inventory_hosts(settings: Settings) -> list[str]:
    if settings.inventory is None:
        raise click.ClickException("HVBOT_INVENTORY is not set: the monitor sweeps the hosts of the inventory.")
    return load_inventory(settings.inventory).names


@click.command("monitor")
@click.option("--tick", "tick_s", default=5.0, show_default=True, help="seconds between alert timer runs")
def monitor_command(tick_s: float) -> None:
    """Sweep replica health of every host, post alerts; exactly one monitor runs (a Redis lease)."""
    settings = Settings()
    configure_logging(settings.log_json)
    connection = redis.Redis.from_url(settings.redis_url)
    hosts = inventory_hosts(settings)
    # housekeeping tells users through these (abandoned jobs, dead failovers, expired approvals)
    install_reporters(build_runtime(settings, connection=connection))
    lease = MonitorLease(connection, ttl_s=max(3 * tick_s, 30.0))
    try:
        lease.acquire()
    except MonitorAlreadyRunning as exc:
        raise click.ClickException(str(exc)) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo(f"hvbot monitor: {len(hosts)} host(s), a sweep every {settings.sweep_interval_seconds:g} s", err=True)
    try:
        build_monitor(settings, connection, hosts).run_forever(lease, stop, tick_s=tick_s)
    except KeyboardInterrupt:
        pass
    finally:
        lease.release()
