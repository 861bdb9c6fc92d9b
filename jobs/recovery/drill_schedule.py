"""When a scheduled drill is due (pure): ``every`` a period, at a weekday and time of day (UTC) when given.

The first drill of a schedule is due at the first ``at`` slot after the schedule was set (at once without ``at``);
each next one at the first slot at least ``every`` after the previous start, so "30d at Sun 03:00" lands on the
first Sunday 03:00 thirty days or more after the last drill.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from jobs.recovery.model import DrillSchedule

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_AT = re.compile(r"^(?:(mon|tue|wed|thu|fri|sat|sun)[a-z]*\s+)?([01]?\d|2[0-3]):([0-5]\d)$", re.IGNORECASE)
MIN_EVERY_S = 3600.0  # a drill an hour is already more than any team reviews
MAX_EVERY_S = 366 * 86400.0


class ScheduleError(ValueError):
    """A schedule that cannot be used; the message says what to write instead."""


@dataclass(frozen=True)
class Slot:
    weekday: int | None  # Monday = 0; None: every day
    hour: int
    minute: int


def parse_at(text: str) -> Slot:
    """"Sun 03:00", "sunday 3:00" or "03:00" (UTC)."""
    match = _AT.match(text.strip())
    if not match:
        raise ScheduleError(f"`{text[:30]}` is not a drill time: write a time of day in UTC like \"03:00\", "
                            f"optionally after a weekday like \"Sun 03:00\".")
    day = match.group(1)
    return Slot(_DAYS.index(day.lower()) if day else None, int(match.group(2)), int(match.group(3)))


def check(schedule: DrillSchedule) -> DrillSchedule:
    if not MIN_EVERY_S <= schedule.every_s <= MAX_EVERY_S:
        raise ScheduleError("A drill period must be between 1 hour and 366 days (like 7d or 30d).")
    if schedule.at is not None:
        parse_at(schedule.at)
    return schedule


def next_slot(slot: Slot | None, after: datetime) -> datetime:
    """The first moment at or after ``after`` that matches ``slot`` (``after`` itself without a slot)."""
    if slot is None:
        return after
    at = after.astimezone(UTC).replace(hour=slot.hour, minute=slot.minute, second=0, microsecond=0)
    for _ in range(8):
        if at >= after and (slot.weekday is None or at.weekday() == slot.weekday):
            return at
        at += timedelta(days=1)
    raise AssertionError("a weekly slot recurs within 8 days")


def next_due(schedule: DrillSchedule, since: datetime, last_started: datetime | None) -> datetime:
    """When the next drill is due: ``since`` is when the schedule was set, ``last_started`` its last drill."""
    slot = parse_at(schedule.at) if schedule.at else None
    if last_started is None:
        return next_slot(slot, since)
    return next_slot(slot, last_started + timedelta(seconds=schedule.every_s))


def overdue(schedule: DrillSchedule, since: datetime, last_success: datetime | None, now: datetime) -> bool:
    """Untested: no successful drill within the period (counted from the schedule's start when never drilled).
    A week's slot can push a drill up to 7 days past the period, so that much slack is allowed with ``at``."""
    slack = timedelta(days=7 if schedule.at and parse_at(schedule.at).weekday is not None else 1 if schedule.at else 0)
    base = last_success or since
    return now > base + timedelta(seconds=schedule.every_s) + slack
