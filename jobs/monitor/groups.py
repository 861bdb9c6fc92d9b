"""What each alert group holds in Redis, read for a message: every host's firing alerts, shown or muted as of now.

Keys (p = the engine's prefix): `p:grows:<group>` hash host -> that host's contribution (jobs.monitor.records),
`p:gresolved:<group>` list of rows resolved since the last notice, `p:groups` and `p:dirty` (see jobs.monitor.state).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import redis

from jobs.monitor.muting import Mutes, inhibiting_hosts
from jobs.monitor.records import contribution_entries
from jobs.monitor.rules import AlertRow, Condition


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def load_hash(raw: dict) -> dict[str, dict]:
    return {text(k): json.loads(v) for k, v in raw.items()}


class GroupContents:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._r = client
        self._p = prefix

    def _k(self, *parts: str) -> str:
        return ":".join((self._p, *parts))

    def entries_each(self, group_keys: Iterable[str]) -> dict[str, list[dict]]:
        """Per group: every firing alert, as muting entries (one round trip)."""
        keys = list(group_keys)
        pipe = self._r.pipeline(transaction=False)
        for g in keys:
            pipe.hgetall(self._k("grows", g))
        return {g: [e for c in load_hash(raw).values() for e in contribution_entries(c, g)]
                for g, raw in zip(keys, pipe.execute())}

    def mutes(self, groups: dict[str, dict], down: set[str], silences: dict[str, dict]) -> Mutes:
        """Muting as of now: hosts seen down in their last sweep, hosts whose host-down alert fires (it keeps
        firing through short clears), and the active silences."""
        host_groups = [g for g, meta in groups.items() if meta["condition"] == Condition.HOST_UNREACHABLE]
        firing = [e for entries in self.entries_each(host_groups).values() for e in entries]
        return Mutes(frozenset(down | inhibiting_hosts(firing)), silences)

    def rows_each(self, group_keys: Iterable[str], mutes: Mutes) -> dict[str, tuple[list[AlertRow], int]]:
        """Per group: rows visible under `mutes`, and the firing count."""
        return {g: ([AlertRow.from_dict(row) for row in mutes.visible(entries)], len(entries))
                for g, entries in self.entries_each(group_keys).items()}

    def rows(self, group_keys: Iterable[str], mutes: Mutes) -> tuple[list[AlertRow], int]:
        """Visible rows and firing count over the given groups."""
        each = self.rows_each(group_keys, mutes).values()
        return [row for rows, _ in each for row in rows], sum(firing for _, firing in each)

    def drain_resolved(self, group_keys: list[str]) -> list[AlertRow]:
        pipe = self._r.pipeline(transaction=False)
        for g in group_keys:
            pipe.lrange(self._k("gresolved", g), 0, -1)
            pipe.delete(self._k("gresolved", g))
        out = pipe.execute()
        return [AlertRow.from_dict(json.loads(x)) for chunk in out[0::2] for x in chunk]

    def delete(self, group_keys: list[str], groups: dict[str, dict]) -> None:
        if not group_keys:
            return
        pipe = self._r.pipeline(transaction=False)
        for g in group_keys:
            groups.pop(g, None)
            pipe.delete(self._k("grows", g), self._k("gresolved", g))
        pipe.hdel(self._k("groups"), *group_keys)
        pipe.srem(self._k("dirty"), *group_keys)
        pipe.execute()
