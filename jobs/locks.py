"""A per-VM lock in Redis: one operation per VM at a time (taken by failover jobs, read by the monitor).

SET NX PX with a random token; renew and release compare the token in Lua, so an expired lock re-taken by
someone else is never released by the old holder. The TTL bounds how long a dead worker blocks the VM.
"""

from __future__ import annotations

import secrets

import redis

from jobs import keys


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


# Release/renew only while the key still holds our token: an expired lock re-taken by someone else is theirs.
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class VmLock:
    """One operation per VM: SET NX PX with a random token; renew and release check the token.

    The TTL bounds how long a dead worker blocks the VM; a live one renews well before it lapses.
    Pass ``token`` to act on a lock taken elsewhere (e.g. the job that holds it).
    """

    def __init__(self, connection: redis.Redis, vm: str, *, ttl_ms: int = 30_000, prefix: str = keys.PREFIX,
                 token: str | None = None) -> None:
        self._redis = connection
        self.key = keys.vm_lock_key(vm, prefix)
        self.ttl_ms = ttl_ms
        self.token = token
        self._release = connection.register_script(_RELEASE_LUA)
        self._renew = connection.register_script(_RENEW_LUA)

    def acquire(self, owner: str) -> bool:
        """Take the lock for ``owner`` (e.g. an approval id); False when someone else holds it."""
        token = f"{owner}/{secrets.token_hex(8)}"
        if self._redis.set(self.key, token, nx=True, px=self.ttl_ms):
            self.token = token
            return True
        return False

    def renew(self) -> bool:
        return self.token is not None and bool(self._renew(keys=[self.key], args=[self.token, self.ttl_ms]) == 1)

    def release(self) -> bool:
        if self.token is None:
            return False
        released = bool(self._release(keys=[self.key], args=[self.token]) == 1)
        self.token = None
        return released

    def holder(self) -> str | None:
        """The owner part of the current token, or None when the VM is free."""
        value = _text(self._redis.get(self.key))
        return value.rpartition("/")[0] if value else None


_RELEASE_OWNER_LUA = """
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. '/' then return redis.call('DEL', KEYS[1]) end
return 0
"""


def release_owned_by(connection: redis.Redis, vm: str, owner: str, prefix: str = keys.PREFIX) -> bool:
    """Free the VM if ``owner`` (e.g. the approval id of a dead run) still holds it; never someone else's lock."""
    script = connection.register_script(_RELEASE_OWNER_LUA)
    return bool(script(keys=[keys.vm_lock_key(vm, prefix)], args=[owner]) == 1)
