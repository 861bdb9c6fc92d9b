"""Slack write pacing shared by every worker: at most one write per interval per channel, 429s honoured.

Slack allows about one chat.postMessage per second per channel and answers 429 with Retry-After
(reference/slack.md §4). Workers in several processes share that limit, so the next free slot per
channel lives in Redis and is reserved atomically by a Lua script. Times are integer milliseconds;
when the caller passes no `now`, the script reads Redis' own clock so all workers share one clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from jobs.keys import PACE_PREFIX

# `now` in ms: ARGV[1], or Redis's own clock when it is '' (one clock for every worker).
_NOW = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# KEYS[1] = next free slot (ms) for the channel. ARGV: now_ms ('' = Redis TIME), interval_ms, ttl_ms.
_RESERVE = _NOW + """
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, nxt)
redis.call('SET', KEYS[1], slot + tonumber(ARGV[2]), 'PX', tonumber(ARGV[3]))
return {slot, slot - now}
"""

# Pushes the next free slot to at least now + retry_after; never pulls it earlier.
_DEFER = _NOW + """
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(nxt, now + tonumber(ARGV[2]))
redis.call('SET', KEYS[1], slot, 'PX', tonumber(ARGV[3]) + tonumber(ARGV[2]))
return slot
"""


@dataclass(frozen=True)
class Slot:
    at_ms: int  # when the write may go out (Redis clock, or the caller's clock if it passed `now`)
    wait_s: float  # how long to wait from `now` before writing


class Pacer:
    """Per-channel slots in Redis. `reserve` claims the next slot; `defer` honours a 429 for everyone."""

    def __init__(self, client: redis.Redis, prefix: str = PACE_PREFIX, interval_s: float = 1.0) -> None:
        self._redis = client
        self._prefix = prefix
        self._interval_ms = max(1, int(interval_s * 1000))
        self._ttl_ms = self._interval_ms + 60_000  # keys vanish once a channel is idle
        self._reserve = client.register_script(_RESERVE)
        self._defer = client.register_script(_DEFER)

    def _key(self, channel: str) -> str:
        return f"{self._prefix}:{channel}"

    def reserve(self, channel: str, now: float | None = None) -> Slot:
        """Claim the channel's next free slot; the caller writes after `wait_s`."""
        at, wait = self._reserve(keys=[self._key(channel)], args=[_ms(now), self._interval_ms, self._ttl_ms])
        return Slot(int(at), int(wait) / 1000)

    def defer(self, channel: str, retry_after_s: float, now: float | None = None) -> int:
        """A 429 said Retry-After: no worker gets a slot on this channel before it has passed."""
        ms = max(0, int(retry_after_s * 1000))
        return int(self._defer(keys=[self._key(channel)], args=[_ms(now), ms, self._ttl_ms]))

    def wait_turn(self, channel: str, sleep: Callable[[float], None] = time.sleep) -> Slot:
        """Reserve a slot and sleep until it (for workers; tests call `reserve` with explicit times)."""
        slot = self.reserve(channel)
        if slot.wait_s > 0:
            sleep(slot.wait_s)
        return slot


def _ms(now: float | None) -> str:
    return "" if now is None else str(int(now * 1000))
