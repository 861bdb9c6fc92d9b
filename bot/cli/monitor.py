"""`hvbot monitor`: the single replica-health monitor (sweeps, housekeeping, alert timers), posting to Slack."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click
import redis
from rq import Queue
from rq.serializers import JSONSerializer

from bot.logs import configure_logging
from bot.delivery.reporters import install_reporters
from bot.runtime import build_runtime
from bot.settings import Settings
from jobs import ports as reporting
from jobs.monitor.state import AlertEngine
from jobs.monitor.rules import AlertRouting, AlertRules
from jobs.monitor.loop import Monitor, MonitorAlreadyRunning, MonitorLease


# Each inline VM row carries its menu and confirm dialog (~280 characters of block text): 25 rows stay well under
# Slack's ~13k msg_blocks_too_long (bot.views.common.MESSAGE_CHARS); the rest goes in the CSV.
INLINE_ROWS = 25


def alert_rules(settings: Settings) -> AlertRules:
    """Routing and timers from the settings; the rest are AlertRules defaults (hyperv.md §7, Alertmanager)."""
    mention = f"<!subteam^{settings.oncall_usergroup}>" if settings.oncall_usergroup else None
    routing = AlertRouting(critical_channel=settings.alert_critical_channel,
                           warning_channel=settings.alert_warning_channel, oncall_mention=mention)
    # Two or more groups ready at once in a channel (e.g. site-a and site-b after a power cut) become one
    # message: each group's CSV would otherwise be a write of its own, and the storm budget is 3 per channel.
    return AlertRules(routing=routing, group_wait_s=settings.alert_group_wait_seconds,
                      repeat_interval_s=settings.alert_repeat_interval_seconds, coalesce_after_groups=1,
                      max_inline_rows=INLINE_ROWS)


def build_monitor(settings: Settings, connection: redis.Redis, hosts: list[str], **overrides: Any) -> Monitor:
    """The monitor, delivering its timed notifications through the installed alert poster."""
    engine = AlertEngine(connection, rules=alert_rules(settings))
    return Monitor(
        client=connection, queue=Queue(settings.queue, connection=connection, serializer=JSONSerializer),
        hosts=hosts, engine=engine, deliver=reporting.current_poster().deliver,
        interval_s=settings.sweep_interval_seconds, **overrides,
    )


def inventory_hosts(settings: Settings) -> list[str]:
    from jobs.hyperv.hosts import load_inventory

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
