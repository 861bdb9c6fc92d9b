"""The monitor lease: exactly one `hvbot monitor` sweeps, and one that died frees the lease after `ttl_s`.

The lease is a token-checked key with a TTL. Renewing tells three cases apart in one atomic script:
the key holds our token (renewed), the key is gone (re-taken: Redis restarted without data, or the lease expired
while Redis was unreachable, and nobody else took it), or it holds another monitor's token (taken over). Only the
last means "another monitor runs"; a merely missing lease is taken back, so a Redis restart never stops the
monitor.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import UTC, datetime
from enum import Enum

import redis

from jobs.keys import MONITOR_LEASE_KEY

# 1: ours, renewed; 2: missing, taken back; 0: another monitor's
_HOLD = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not current then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class MonitorAlreadyRunning(RuntimeError):
    """Another monitor holds the lease; the message says which one."""


class LeaseState(Enum):
    HELD = "held"  # ours, renewed
    RETAKEN = "retaken"  # was missing; ours again
    TAKEN = "taken"  # another monitor holds it


class MonitorLease:
    def __init__(self, client: redis.Redis, ttl_s: float, key: str = MONITOR_LEASE_KEY) -> None:
        self._r = client
        self._key = key
        self._ttl_ms = max(1000, int(ttl_s * 1000))
        self.holder = f"{socket.gethostname()} pid {os.getpid()} since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"
        self._token = f"{secrets.token_hex(8)} {self.holder}"
        self._hold = client.register_script(_HOLD)  # EVALSHA, reloaded by redis-py after a restart
        self._release = client.register_script(_RELEASE)

    def hold(self) -> LeaseState:
        """Renew the lease, or take it back when it is missing."""
        return {1: LeaseState.HELD, 2: LeaseState.RETAKEN}.get(
            int(self._hold(keys=[self._key], args=[self._token, self._ttl_ms])), LeaseState.TAKEN)

    def acquire(self) -> None:
        """Take the lease at start; raises MonitorAlreadyRunning when another monitor holds it."""
        if self.hold() is LeaseState.TAKEN:
            raise MonitorAlreadyRunning(
                f"Another hvbot monitor is already running ({self.other_holder()}); only one may run. Stop it "
                f"first, or wait up to {self._ttl_ms // 1000} s if it was killed."
            )

    def renew(self) -> bool:
        """False only when another monitor holds the lease: then stop, do not double-sweep."""
        return self.hold() is not LeaseState.TAKEN

    def other_holder(self) -> str:
        other = self._r.get(self._key)
        text = other.decode() if isinstance(other, bytes) else str(other or "")
        return text.split(" ", 1)[1] if " " in text else "unknown"

    def release(self) -> None:
        self._release(keys=[self._key], args=[self._token])
