"""RQ entry point of `/hyperv replication VM|HOST|--all` charts: read the history, render the PNG, upload it.

A VM's chart covers both sides of its replication (every host whose history names it); a host's or the fleet's
chart sums the health counts of the hosts asked for. No history yet is answered in words, not with an empty chart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import redis
from rq import get_current_job

from jobs.monitor import charts, history
from jobs.ports import ReplyTo, current, current_uploader


def render(client: redis.Redis, kind: str, target: str, hosts: list[str], now: datetime) -> tuple[str, bytes]:
    """(title, PNG) of a VM chart (`kind` "vm") or of the hosts' health counts ("fleet"); ValueError: no history."""
    if kind == "vm":
        series = history.vm_series(client, hosts, target, now)
        return f"{target}: replication over 24 h", charts.vm_chart(target, series, now)
    return f"{target}: replica health over 7 days", charts.fleet_chart(target, history.fleet_series(client, hosts, now),
                                                                       now)


def run_chart(kind: str, target: str, hosts: list[str], reply: dict[str, Any],
              now: str | None = None) -> dict[str, Any]:
    """`kind` "vm" (target: the VM) or "fleet" (target: a host name or "all hosts"); `hosts`: whose history to read."""
    job = get_current_job()
    client: redis.Redis = job.connection if job is not None else redis.Redis()
    to = ReplyTo.from_dict(reply)
    at = datetime.fromisoformat(now) if now else datetime.now(UTC)
    try:
        title, png = render(client, kind, target, hosts, at)
    except ValueError as exc:
        current().failed(job.id if job is not None else "", to, f"{exc}: the monitor keeps one sample per "
                         "VM every 5 minutes, so ask again after its next sweeps.")
        return {"ok": False, "error": str(exc)}
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in target)[:60]
    current_uploader().upload(to, f"hvbot-{kind}-{name}.png", png, title, f"<@{to.user}> {title}")
    return {"ok": True, "bytes": len(png)}
