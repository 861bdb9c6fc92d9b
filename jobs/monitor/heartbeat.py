"""The monitor's own health: a heartbeat it writes every round, read by `hvbot monitor --health`,
`hvbot check-config` and the `/hyperv replication` answer.

The heartbeat says when the monitor last finished a round and last queued sweeps, and how long a silence is still
normal for its settings (`stale_after_s`: two sweep intervals plus a few ticks, so one slow round is not an alarm).
It has no TTL: a monitor that stopped leaves its last heartbeat behind, so readers can say for how long it has
not swept. A missing heartbeat means no monitor ever ran against this Redis, or Redis lost its data.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import redis

from jobs import units
from jobs.keys import MONITOR_HEARTBEAT_KEY


@dataclass(frozen=True)
class Heartbeat:
    at: float  # epoch seconds of the last round that completed
    swept_at: float  # epoch seconds of the last round that queued sweeps
    interval_s: float
    tick_s: float
    holder: str  # host and pid of the monitor process
    hosts: int

    @property
    def stale_after_s(self) -> float:
        return 2 * self.interval_s + 3 * self.tick_s

    def fresh(self, now: float) -> bool:
        return now - self.swept_at <= self.stale_after_s

    def describe(self, now: float) -> str:
        age = max(0.0, now - self.swept_at)
        if self.fresh(now):
            return f"monitor last swept {age_text(age)} ago ({units.plural(self.hosts, 'host')}, {self.holder})"
        return (f"monitor has not swept for {age_text(age)} (a sweep is due every {age_text(self.interval_s)}; "
                f"last seen: {self.holder}): check that `hvbot monitor` runs and reaches Redis")


def age_text(seconds: float) -> str:
    return units.duration(seconds, 1 if seconds < 3600 else 2)


NO_HEARTBEAT = ("no monitor heartbeat: `hvbot monitor` has not run against this Redis yet "
                "(or Redis lost its data and the monitor has not come back)")


def write(client: redis.Redis, beat: Heartbeat) -> None:
    client.set(MONITOR_HEARTBEAT_KEY, json.dumps(asdict(beat), separators=(",", ":")))


def read(client: redis.Redis) -> Heartbeat | None:
    raw = client.get(MONITOR_HEARTBEAT_KEY)
    if not raw:
        return None
    try:
        return Heartbeat(**json.loads(raw))
    except (TypeError, ValueError):  # written by another version: treat as absent, the monitor rewrites it
        return None


def status_line(client: redis.Redis, now: float) -> tuple[bool | None, str]:
    """(fresh, text): None when there is no heartbeat at all."""
    beat = read(client)
    if beat is None:
        return None, NO_HEARTBEAT
    return beat.fresh(now), beat.describe(now)
