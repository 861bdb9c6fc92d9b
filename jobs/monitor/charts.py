"""PNG charts of replication history, rendered server-side with matplotlib's Agg backend (no display needed).

`vm_chart`: one VM's replication lag (minutes) per host side over 24 h, with its health as a colour strip.
`fleet_chart`: the health counts of VM replicas over 7 days, stacked, with unreachable hosts as a line.
matplotlib is imported inside the two renderers: only the worker that draws pays its import (about a second), not
every process that merely queues a chart.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from jobs.monitor.history import HEALTH_NAMES, HOST_WINDOW_S, VM_WINDOW_S, HostSample, VmSample

COLOURS = {"Normal": "#2a9d8f", "Warning": "#e9c46a", "Critical": "#e63946", "Other": "#adb5bd"}
SIZE_IN = (9.0, 4.5)
DPI = 100


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # before pyplot: render to memory, never to a screen
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    """The finished figure as PNG: dates slanted to fit, margins tightened."""
    fig.autofmt_xdate()
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


def _window(ax: Any, now: datetime, window_s: int, fmt: str) -> None:
    """The whole window on the time axis, whatever the samples span: one sample must not stretch it over years."""
    import matplotlib.dates as mdates

    ax.set_xlim(now - timedelta(seconds=window_s), now)
    ax.xaxis.set_major_formatter(mdates.DateFormatter(fmt, tz=UTC))


def _times(samples: Sequence[VmSample | HostSample]) -> list[datetime]:
    return [datetime.fromtimestamp(s.at, UTC) for s in samples]


def vm_chart(vm: str, series: Mapping[str, Sequence[VmSample]], now: datetime) -> bytes:
    """`series`: host -> that side's samples (jobs.monitor.history.vm_series), drawn over the 24 h up to `now`.
    Raises ValueError when empty."""
    if not any(series.values()):
        raise ValueError(f"no replication history of {vm} yet")
    plt = _pyplot()
    fig, (lag_ax, health_ax) = plt.subplots(2, 1, figsize=SIZE_IN, sharex=True,
                                           gridspec_kw={"height_ratios": [4, 1]})
    try:
        for host, samples in sorted(series.items()):
            points = [(t, s.lag_s / 60) for t, s in zip(_times(samples), samples) if s.lag_s is not None]
            if points:
                lag_ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=f"on {host}")
        lag_ax.set_ylabel("lag (min)")
        lag_ax.set_ylim(bottom=0)
        lag_ax.grid(True, alpha=0.3)
        lag_ax.legend(loc="upper left", fontsize="small")
        lag_ax.set_title(f"{vm}: replication lag and health, last 24 h (UTC)")
        hosts = sorted(series)
        for row, host in enumerate(hosts):
            samples = series[host]
            health_ax.scatter(_times(samples), [row] * len(samples), c=[COLOURS[s.health] for s in samples],
                              marker="s", s=30)
        health_ax.set_yticks(range(len(hosts)), hosts, fontsize="small")
        health_ax.set_ylim(-0.5, len(hosts) - 0.5)
        health_ax.set_ylabel("health")
        _window(health_ax, now, VM_WINDOW_S, "%H:%M")
        return _png(fig)
    finally:
        plt.close(fig)


def fleet_chart(title: str, samples: Sequence[HostSample], now: datetime) -> bytes:
    """Health counts per 15-minute slot (jobs.monitor.history.fleet_series), drawn over the 7 days up to `now`.
    Raises ValueError when empty."""
    if not samples:
        raise ValueError(f"no replication history of {title} yet")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=SIZE_IN)
    try:
        times = _times(samples)
        ax.stackplot(times, *[[s.counts[name] for s in samples] for name in HEALTH_NAMES],
                     labels=list(HEALTH_NAMES), colors=[COLOURS[n] for n in HEALTH_NAMES], step="post")
        ax.set_ylabel("VM replicas")
        ax.set_ylim(bottom=0)
        down = [s.counts["Unreachable"] for s in samples]
        if any(down):
            hosts_ax = ax.twinx()
            hosts_ax.step(times, down, where="post", color="black", linestyle="--", label="hosts unreachable")
            hosts_ax.set_ylabel("hosts unreachable")
            hosts_ax.set_ylim(bottom=0)
            hosts_ax.legend(loc="upper right", fontsize="small")
        ax.legend(loc="upper left", fontsize="small")
        ax.grid(True, alpha=0.3)
        ax.set_title(f"{title}: replica health, last 7 days (UTC)")
        _window(ax, now, HOST_WINDOW_S, "%a %d %b")
        return _png(fig)
    finally:
        plt.close(fig)
