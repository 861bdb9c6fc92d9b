"""``Fleet``: a session per inventory host, and bounded parallel fan-out with per-host results and errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from jobs.hyperv.commands import Pipeline, single
from jobs.hyperv.errors import ConfigError, HostTimeout, HyperVError
from jobs.hyperv.hosts import HostConfig, Inventory, load_inventory
from jobs.hyperv.records import VmRecord
from jobs.hyperv.session import GRACE_S, HostSession
from jobs.hyperv.settings import JobSettings

T = TypeVar("T")


@dataclass(frozen=True)
class HostCall:
    """What a fan-out function gets: one host's session and the operation's shared absolute deadline."""

    session: HostSession
    deadline_at: float

    @property
    def host(self) -> str:
        return self.session.name

    def run(self, pipe: Pipeline | Sequence[Pipeline]) -> list[Any]:
        """One pipeline, or several sent as statements of one invocation (one round of exchanges)."""
        return self.session.run(pipe, deadline_at=self.deadline_at)


@dataclass
class FanOut(Generic[T]):
    """Per-host results and per-host errors, in inventory order."""

    results: dict[str, T] = field(default_factory=dict)
    errors: dict[str, HyperVError] = field(default_factory=dict)

    @property
    def hosts_ok(self) -> list[str]:
        return list(self.results)

    def error_dicts(self) -> list[dict[str, str]]:
        return [e.to_dict() for e in self.errors.values()]


@dataclass(frozen=True)
class VmLocation:
    host: str
    name: str
    state: str | None
    replication_mode: str | None


class Fleet:
    def __init__(self, inventory: Inventory, settings: JobSettings | None = None) -> None:
        self.inventory = inventory
        self.settings = settings or JobSettings()
        self._sessions: dict[str, HostSession] = {h.name: HostSession(h, self.settings) for h in inventory.hosts}
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: JobSettings | None = None) -> Fleet:
        settings = settings or JobSettings()
        if settings.inventory is None:
            raise ValueError("HVBOT_INVENTORY is not set: point it at the inventory YAML file")
        return cls(load_inventory(settings.inventory), settings)

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def hosts(self) -> list[str]:
        return list(self._sessions)

    def session(self, host: str) -> HostSession:
        try:
            return self._sessions[self.inventory.host(host).name]
        except KeyError:
            raise ConfigError(host, f"{host}: not in the inventory (hosts: {', '.join(self.hosts)}).") from None

    def config(self, host: str) -> HostConfig:
        return self.session(host).config

    def run(self, host: str, pipe: Pipeline, deadline_s: float | None = None) -> list[Any]:
        """One pipeline on one host; raises a ``HyperVError`` subclass."""
        return self.session(host).run(pipe, deadline_s=deadline_s)

    def select(self, host: str | None) -> list[str]:
        """``host`` alone (checked against the inventory), or every host."""
        return [self.session(host).name] if host else self.hosts

    def fan_out(self, fn: Callable[[HostCall], T], hosts: Iterable[str] | None = None,
                deadline_s: float | None = None) -> FanOut[T]:
        """``fn`` on every host at once (bounded); returns when each answered or hit the deadline."""
        names = list(hosts) if hosts is not None else self.hosts
        limit = deadline_s if deadline_s is not None else self.settings.deadline_s
        at = time.monotonic() + limit
        out: FanOut[T] = FanOut()
        if not names:
            return out
        sessions = {n: self.session(n) for n in names}
        futures = {n: self._executor().submit(fn, HostCall(s, at)) for n, s in sessions.items()}
        try:
            # Sessions already bound every exchange; this outer wait is the backstop for fn's own work.
            wait(futures.values(), timeout=max(0.0, at - time.monotonic()) + 2 * GRACE_S + 1.0)
            for name, fut in futures.items():
                self._collect(out, name, fut, limit)
        finally:
            for fut in futures.values():
                fut.cancel()  # not started by now: its host already counts as timed out
        return _ordered(out, names)

    def _executor(self) -> ThreadPoolExecutor:
        """One bounded pool per fleet, kept between calls: threads start once, not on every fan-out.

        At most ``fanout_concurrency`` threads (``HVBOT_FANOUT_CONCURRENCY``) ever exist, whatever the number
        of hosts or calls; hosts beyond that wait their turn under the same deadline.
        """
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.settings.fanout_concurrency,
                                                thread_name_prefix="hvbot-fanout")
            return self._pool

    def find_vm(self, name: str, deadline_s: float | None = None) -> FanOut[list[VmLocation]]:
        """Which hosts hold a VM named ``name`` (case-insensitive), with state and replication mode."""

        def locate(call: HostCall) -> list[VmLocation]:
            vms = [VmRecord.parse(call.host, o) for o in call.run(single("Get-VM"))]
            return [VmLocation(call.host, v.name, v.state, v.replication_mode)
                    for v in vms if v.name.lower() == name.lower()]

        return self.fan_out(locate, deadline_s=deadline_s)

    def warm(self, hosts: Iterable[str] | None = None, deadline_s: float | None = None) -> FanOut[bool]:
        """Open every host's session now (bounded fan-out, no command): a long-lived process (a simple
        worker) then answers its first calls without the pool-open exchanges."""

        def open_session(call: HostCall) -> bool:
            call.session.open(deadline_s=max(0.1, call.deadline_at - time.monotonic()))
            return True

        return self.fan_out(open_session, hosts, deadline_s)

    def exchanges(self) -> int:
        return sum(s.exchanges for s in self._sessions.values())

    def close(self) -> None:
        with ThreadPoolExecutor(max_workers=max(1, min(16, len(self._sessions)))) as closer:
            list(closer.map(lambda s: s.close(), self._sessions.values()))
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    @staticmethod
    def _collect(out: FanOut[T], name: str, fut: Any, limit: float) -> None:
        if not fut.done():
            out.errors[name] = HostTimeout.build(name, "the operation", limit)
            return
        exc = fut.exception()
        if exc is None:
            out.results[name] = fut.result()
        elif isinstance(exc, HyperVError):
            out.errors[name] = exc
        else:
            raise exc  # a bug in fn, not a host failure: surface it


def _ordered(out: FanOut[T], names: list[str]) -> FanOut[T]:
    return FanOut({n: out.results[n] for n in names if n in out.results},
                  {n: out.errors[n] for n in names if n in out.errors})
