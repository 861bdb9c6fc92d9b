"""The lab's time: ``utc_now`` (the default ``Fleet.clock``) and ``ManualClock``, a clock set by hand.

Tests and the ``clock`` control action swap a ``ManualClock`` in to move the fleet's time deterministically.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


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
