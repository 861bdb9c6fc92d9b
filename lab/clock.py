"""The lab's time: ``utc_now`` (the default ``Fleet.clock``) and ``ManualClock``, a clock set by hand.

Tests and the ``clock`` control action swap a ``ManualClock`` in to move the fleet's time deterministically.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class HostZone(tzinfo):
    """A Windows host's local time zone (a fixed offset). Hyper-V's DateTimes are local times, and PowerShell's
    serializer writes them with their offset, ``+00:00`` included; it writes ``Z`` only for UTC-kind values.
    Not ``datetime.timezone``: that compares equal to UTC at offset 0 and psrpcore would then write ``Z``."""

    def __init__(self, minutes: int = 0) -> None:
        self.offset = timedelta(minutes=minutes)

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return self.offset

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        sign, minutes = ("-", -self.offset) if self.offset < timedelta(0) else ("+", self.offset)
        hours, rest = divmod(int(minutes.total_seconds()) // 60, 60)
        return f"UTC{sign}{hours:02d}:{rest:02d}"

    def __repr__(self) -> str:
        return f"HostZone({self.tzname(None)})"


def dotnet_ticks_digit(value: datetime) -> int:
    """The 7th fraction digit (100 ns) of a round-trip DateTime. Windows always writes 7 digits; the lab keeps
    microseconds, so the digit is synthetic (never 0, so psrpcore writes all 7 too)."""
    return 1 + value.microsecond % 9


class ManualClock:
    """Returns a fixed time until told otherwise: ``set(when)``, ``advance(seconds)``."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or utc_now()
        if self.now.tzinfo is None:
            raise ValueError("the lab clock needs a timezone-aware time")

    def __call__(self) -> datetime:
        return self.now

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("the lab clock needs a timezone-aware time")
        self.now = when

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now
