"""Waiting between failed tries of a periodic loop: every loop that talks to Redis backs off while it is down,
so an outage costs a log line per try, not a core (a loop that retried at its normal pace and logged a
traceback each time kept a CPU busy for as long as Redis was away)."""

from __future__ import annotations


def backoff_s(failures: int, first_s: float, cap_s: float) -> float:
    """Wait before the next try after `failures` failed rounds in a row: doubling from `first_s`, at most `cap_s`."""
    return min(cap_s, first_s * 2 ** min(max(failures - 1, 0), 16))
