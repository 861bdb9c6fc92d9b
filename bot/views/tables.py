"""Lookup tables as people read them: plain column names and readable cells (sizes, ages, percentages, yes/no).

The Report keeps exact values (bytes, seconds, ISO times) for the CSV; only what a message shows is shaped here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.views.legend import legend_text
from jobs import units

AT_MAX_MARK = "◆ at max"


@dataclass(frozen=True)
class Column:
    label: str
    show: Callable[[Any, datetime], str] | None = None  # None: the value as it is


def _size(value: Any, _now: datetime) -> str:
    return units.size(value)


def _in_use(value: Any, _now: datetime) -> str:
    """Memory a VM uses: Hyper-V reports 0 for a VM that is not running, shown as a dash rather than "0 B"."""
    return "—" if value == 0 else units.size(value)


def _words(names: dict[str, str]) -> Callable[[Any, datetime], str]:
    return lambda value, _now: names.get(str(value), str(value))


def _percent(value: Any, _now: datetime) -> str:
    return units.percent(value)


def _yes_no(value: Any, _now: datetime) -> str:
    return units.yes_no(value)


def _uptime(value: Any, _now: datetime) -> str:
    return units.duration(value) if value else ""


def _created(value: Any, now: datetime) -> str:
    when = units.parse_time(value)
    return units.when_and_age(when, now) if when else ("" if value is None else str(value))


def _at_max(value: Any, _now: datetime) -> str:
    return AT_MAX_MARK if value else ""


COLUMNS: dict[str, Column] = {
    "vm": Column("VM"),
    "dynamic": Column("dynamic", _yes_no),
    "startup": Column("startup", _size),
    "minimum": Column("min", _size),
    "maximum": Column("max", _size),
    "buffer": Column("buffer", _percent),
    "assigned": Column("assigned", _in_use),
    "demand": Column("demand", _in_use),
    "pressure_pct": Column("pressure", _percent),
    "at_maximum": Column("at max", _at_max),
    "uptime_s": Column("uptime", _uptime),
    "cpu_usage": Column("CPU use", _percent),
    "processors": Column("vCPUs"),
    "memory_assigned": Column("memory", _in_use),
    "memory_demand": Column("demand", _in_use),
    "replication_mode": Column("replication", _words({"None": "none"})),
    "replication_state": Column("repl. state"),
    "replication_health": Column("repl. health", _words({"NotApplicable": "n/a"})),
    "allow_teaming": Column("teaming"),
    "created": Column("created", _created),
    "ipv4": Column("IPv4"),
    "ipv6": Column("IPv6"),
    "mac": Column("MAC"),
}
STATE_COLUMNS = ("replication_state",)


def label(column: str) -> str:
    spec = COLUMNS.get(column)
    return spec.label if spec else column.replace("_", " ")


def cell(column: str, value: Any, now: datetime) -> Any:
    """The cell as shown; lists and other raw values pass through for the table's own cell rule."""
    spec = COLUMNS.get(column)
    if spec is None or spec.show is None or value is None:
        return value
    return spec.show(value, now)


def readable(columns: Sequence[str], rows: Sequence[dict[str, Any]], now: datetime
             ) -> tuple[list[str], list[dict[str, Any]]]:
    """Labels and shown rows (keyed by label) for ``table_lines``."""
    labels = [label(c) for c in columns]
    shown = [{label(c): cell(c, row.get(c), now) for c in columns} for row in rows]
    return labels, shown


def legend(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    """What the cryptic replication states among ``rows`` mean (empty when none is shown)."""
    return legend_text(row.get(c) for row in rows for c in STATE_COLUMNS if c in columns)


def _asks_at_max(report: dict[str, Any], command: str) -> bool:
    return report.get("kind") == "memory" and "--at-max" in command.split()


def row_nouns(report: dict[str, Any], command: str) -> tuple[str, str]:
    """What the summary counts: rows, or for `memory --at-max` the VMs at their maximum (one, many)."""
    return ("VM at its maximum", "VMs at their maximum") if _asks_at_max(report, command) else ("row", "rows")


def empty_text(report: dict[str, Any], command: str) -> str:
    """What an answer without rows says: `memory --at-max` answers the question it was asked."""
    return "_No VM has reached its dynamic memory maximum._" if _asks_at_max(report, command) else "_No matching rows._"
