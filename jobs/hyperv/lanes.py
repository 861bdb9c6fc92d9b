"""Several sessions per host for an operation that sends many independent calls to the same few hosts.

A ``HostSession`` serves one call at a time (one runspace pool, one pipeline). A site failover sends dozens of
VMs' steps to each replica host at once; queued on one session, the bot and not the hosts would set the pace.
``HostLanes`` gives each host up to ``per_host`` sessions of its own, opened on demand with the fleet's inventory
entry and settings and closed with the lanes; the fleet's own session stays free for the operation's other calls
(a heartbeat watch's polls). A caller borrows a free session for one call, or waits (bounded by its deadline)
until one is free.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Self

from jobs.hyperv.commands import Pipeline
from jobs.hyperv.errors import HostTimeout
from jobs.hyperv.fleet import Fleet
from jobs.hyperv.session import HostSession


@dataclass
class _Host:
    idle: list[HostSession] = field(default_factory=list)
    opened: list[HostSession] = field(default_factory=list)
    created: int = 0  # sessions made or being made (at most per_host)


class HostLanes:
    """Up to ``per_host`` sessions per host, borrowed one call at a time."""

    def __init__(self, fleet: Fleet, per_host: int) -> None:
        if per_host < 1:
            raise ValueError("per_host must be 1 or more")
        self.fleet, self.per_host = fleet, per_host
        self._hosts: dict[str, _Host] = {}
        self._free = threading.Condition()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def borrow(self, host: str, deadline_at: float | None = None) -> Iterator[HostSession]:
        """A session of ``host`` no other caller of these lanes uses until the block ends."""
        name = self.fleet.session(host).name
        at = deadline_at if deadline_at is not None else time.monotonic() + self.fleet.settings.deadline_s
        session = self._take(name, at)
        try:
            yield session
        finally:
            with self._free:
                entry = self._hosts.get(name)
                if entry is not None:  # None once the lanes were closed under a late caller
                    entry.idle.append(session)
                self._free.notify_all()

    def run(self, host: str, pipe: Pipeline | Sequence[Pipeline], deadline_s: float | None = None) -> list[Any]:
        """One call on a free session of ``host``; raises a ``HyperVError`` subclass like ``Fleet.run``."""
        limit = deadline_s if deadline_s is not None else self.fleet.settings.deadline_s
        at = time.monotonic() + limit
        with self.borrow(host, at) as session:
            return session.run(pipe, deadline_at=at)

    def _take(self, name: str, at: float) -> HostSession:
        with self._free:
            entry = self._hosts.setdefault(name, _Host())
            while True:
                if entry.idle:
                    return entry.idle.pop()
                if entry.created < self.per_host:
                    entry.created += 1
                    break
                left = at - time.monotonic()
                if left <= 0:
                    raise HostTimeout.build(name, "waiting for a free session", self.fleet.settings.deadline_s)
                self._free.wait(left)
        session = HostSession(self.fleet.config(name), self.fleet.settings)  # opens its pool on its first call
        with self._free:
            entry.opened.append(session)
        return session

    def sessions(self, host: str) -> int:
        """How many sessions of ``host`` these lanes made."""
        with self._free:
            entry = self._hosts.get(self.fleet.session(host).name)
            return entry.created if entry else 0

    def close(self) -> None:
        """Close every session these lanes opened (the fleet's own stay)."""
        with self._free:
            opened = [s for entry in self._hosts.values() for s in entry.opened]
            self._hosts = {}
        if opened:
            with ThreadPoolExecutor(max_workers=min(16, len(opened))) as closer:
                list(closer.map(lambda s: s.close(), opened))
