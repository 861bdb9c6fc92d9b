"""Fresh replication facts of one VM while a recovery group runs, read host by host for every VM asking at once.

Each VM of a group still reads its facts before its steps and after each of them (``jobs.failover.run``), but the
reads of VMs on one host are merged: a VM's request joins the next batched read of that host
(``jobs.recovery.gather.read_replicated``: one invocation of many statements for any number of VMs), and that read
starts only after the request was made, so every check sees facts read after it asked, as a single failover's do.
One batched read per host is in flight at a time, on a session of the run's ``HostLanes``; requests arriving
meanwhile make up the next one. A host that does not answer leaves its side ``reachable=False``; a PowerShell
error from a host that answered is raised, as ``jobs.failover.gather.gather`` does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from jobs.failover.facts import ReplicationFacts, SideFacts
from jobs.failover.gather import Pair
from jobs.hyperv.errors import HostTimeout, HyperVError, PowerShellError
from jobs.hyperv.fleet import Fleet, HostCall
from jobs.hyperv.lanes import HostLanes
from jobs.hyperv.session import GRACE_S
from jobs.recovery.gather import read_replicated

Reader = Callable[[Sequence[str]], dict[str, SideFacts]]


@dataclass
class _Batch:
    names: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    sides: dict[str, SideFacts] = field(default_factory=dict)
    error: BaseException | None = None


class HostBatcher:
    """Merges the concurrent requests for one host into one read at a time, on its own thread."""

    def __init__(self, host: str, read: Reader, wait_s: float) -> None:
        self.host, self._read, self._wait_s = host, read, wait_s
        self._cond = threading.Condition()
        self._open: _Batch | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=f"hvbot-reads-{host}", daemon=True)
        self._thread.start()
        self.reads = 0  # batched reads sent (for benchmarks and tests)

    def request(self, vm: str) -> _Batch:
        """Join the next read of this host (one not yet started)."""
        with self._cond:
            if self._closed:
                raise RuntimeError(f"the reads of {self.host} are closed")
            batch = self._open = self._open or _Batch()
            if vm.lower() not in (n.lower() for n in batch.names):
                batch.names.append(vm)
            self._cond.notify()
            return batch

    def side(self, batch: _Batch, vm: str) -> SideFacts:
        """The VM's side from ``batch`` once read; raises what the read raised."""
        if not batch.done.wait(self._wait_s):
            raise HostTimeout.build(self.host, "the batched read of its VMs", self._wait_s)
        if batch.error is not None:
            raise batch.error
        return batch.sides[vm.lower()]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=self._wait_s)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._open is None and not self._closed:
                    self._cond.wait()
                if self._open is None:
                    return
                batch, self._open = self._open, None
            try:
                self.reads += 1
                batch.sides = self._read(batch.names)
            except BaseException as exc:  # noqa: BLE001 - handed to every requester of the batch, raised there
                batch.error = exc
            finally:
                batch.done.set()


class BatchedFacts:
    """``facts(vm, pair)`` for every VM of a run, one merged read per host at a time."""

    def __init__(self, fleet: Fleet, lanes: HostLanes, deadline_s: float | None = None) -> None:
        self.fleet, self.lanes = fleet, lanes
        self.deadline_s = deadline_s if deadline_s is not None else fleet.settings.deadline_s
        self._batchers: dict[str, HostBatcher] = {}
        self._mutex = threading.Lock()

    def __enter__(self) -> BatchedFacts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def facts(self, vm: str, pair: Pair) -> ReplicationFacts:
        """Both sides of ``vm``, each from a read of its host that started after this call."""
        tickets = [(b, b.request(vm)) for b in (self._batcher(pair.primary), self._batcher(pair.replica))]
        primary, replica = (self._side(b, t, vm) for b, t in tickets)
        return ReplicationFacts(vm, primary, replica)

    def reads(self) -> int:
        with self._mutex:
            return sum(b.reads for b in self._batchers.values())

    def close(self) -> None:
        with self._mutex:
            batchers, self._batchers = list(self._batchers.values()), {}
        for b in batchers:
            b.close()

    def _side(self, batcher: HostBatcher, batch: _Batch, vm: str) -> SideFacts:
        try:
            return batcher.side(batch, vm)
        except PowerShellError:  # the host answered: a real refusal, not a lost host
            raise
        except HyperVError:
            return SideFacts(host=batcher.host, fqdn=self.fleet.config(batcher.host).fqdn or "", reachable=False)

    def _batcher(self, host: str) -> HostBatcher:
        name = self.fleet.session(host).name
        with self._mutex:
            if name not in self._batchers:
                wait_s = self.deadline_s + 2 * GRACE_S + 1.0  # the read's own deadline bounds it; this is a backstop
                self._batchers[name] = HostBatcher(name, self._reader(name), wait_s)
            return self._batchers[name]

    def _reader(self, host: str) -> Reader:
        def read(names: Sequence[str]) -> dict[str, SideFacts]:
            at = time.monotonic() + self.deadline_s
            with self.lanes.borrow(host, at) as session:
                return read_replicated(HostCall(session, at), names)
        return read
