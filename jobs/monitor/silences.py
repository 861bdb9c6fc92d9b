"""Silences in Redis: mute the alerts of a VM, a host or a group until a time (`<prefix>:silences`, id -> silence).

Whether a silence mutes an alert is decided when a message is built (jobs.monitor.muting).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import redis

from jobs.monitor.groups import load_hash
from jobs.monitor.rules import short_host

KINDS = ("vm", "host", "group")


class SilenceStore:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._r = client
        self._key = f"{prefix}:silences"

    def add(self, kind: str, target: str, duration_s: float, now: datetime, by: str, reason: str = "") -> str:
        """Mute alerts of a VM, a host or a group (`kind` vm|host|group) until now + duration; returns its id."""
        if kind not in KINDS:
            raise ValueError(f"silence kind must be vm, host or group, not {kind!r}")
        target = target if kind == "group" else (short_host(target) if kind == "host" else target.lower())
        sid = uuid.uuid4().hex[:12]
        entry = {"kind": kind, "target": target, "until": now.timestamp() + duration_s, "by": by,
                 "reason": reason or "silenced"}
        self._r.hset(self._key, sid, json.dumps(entry, separators=(",", ":"), sort_keys=True))
        return sid

    def remove(self, silence_id: str) -> bool:
        return bool(self._r.hdel(self._key, silence_id))

    def active(self, ts: float) -> dict[str, dict]:
        return {sid: e for sid, e in load_hash(self._r.hgetall(self._key)).items() if e["until"] > ts}
