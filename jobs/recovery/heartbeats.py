"""Waiting for failed-over VMs' guests to answer: Get-VM's Heartbeat on each replica host, polled from the moment
a VM's steps end until it reports a healthy heartbeat or the group's time limit passes.

One ``Get-VM -Name a,b,c`` per replica host and poll (not one per VM), hosts read in parallel. Which
VMHeartbeatStatus values count as "up" is hvbot's reading of hyperv.md §3.6 (the reference lists the members
but not their meaning): the two Ok values whose applications are not reported critical.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from jobs.hyperv.commands import single
from jobs.hyperv.fleet import Fleet, HostCall
from jobs.hyperv.records import VmRecord, type_name
from jobs.recovery.model import Member

HEALTHY = frozenset({"OkApplicationsHealthy", "OkApplicationsUnknown"})


def guest_name(member: Member, test: bool) -> str:
    """The VM whose guest boots: the replica VM itself, or the '<VM> - Test' VM of a test failover."""
    return f"{member.vm} - Test" if test else member.vm


class HeartbeatWatch:
    """Watches guests while their group still runs: ``add`` a member when its failover steps ended, ``close`` when
    no more will come; ``run`` (in its own thread) polls until every added member reports a healthy heartbeat
    (``seen`` is called once each, as it happens) and returns the members that did not by ``deadline``
    (time.monotonic), with why. A member added after the deadline still gets one read."""

    def __init__(self, fleet: Fleet, *, test: bool, deadline: float, poll_s: float,
                 seen: Callable[[Member], None], stop: threading.Event | None = None) -> None:
        self.fleet, self.test, self.deadline, self.poll_s, self.seen = fleet, test, deadline, poll_s, seen
        self._stop = stop or threading.Event()
        self._mutex = threading.Lock()
        self._new: list[Member] = []
        self._closed = threading.Event()
        self._wake = threading.Event()

    def add(self, member: Member) -> None:
        with self._mutex:
            self._new.append(member)
        self._wake.set()

    def close(self) -> None:
        self._closed.set()
        self._wake.set()

    def _take(self) -> list[Member]:
        with self._mutex:
            fresh, self._new = self._new, []
        return fresh

    def run(self) -> dict[Member, str]:
        pending: dict[str, dict[str, Member]] = {}  # host -> guest name -> member
        last: dict[Member, str] = {}
        silent: dict[Member, str] = {}
        while True:
            self._wake.clear()
            for m in self._take():
                pending.setdefault(m.replica_host, {})[guest_name(m, self.test)] = m
                last[m] = "no heartbeat reported yet"
            if pending:
                self._poll(pending, last)
                pending = {h: names for h, names in pending.items() if names}
            if time.monotonic() >= self.deadline or self._stop.is_set():
                silent.update({m: last[m] for names in pending.values() for m in names.values()})
                pending = {}
            if self._closed.is_set() and not pending:
                fresh = self._take()
                if not fresh:
                    return silent
                self.add_all(fresh)
                continue
            left = self.deadline - time.monotonic()
            pause = min(self.poll_s, left) if left > 0 else self.poll_s
            # polling the hosts at the configured pace; with nothing to poll, woken by the next add or close
            (self._stop if pending else self._wake).wait(pause)

    def add_all(self, members: Sequence[Member]) -> None:
        with self._mutex:
            self._new[:0] = members

    def _poll(self, pending: dict[str, dict[str, Member]], last: dict[Member, str]) -> None:
        out = self.fleet.fan_out(_reader({h: list(names) for h, names in pending.items()}), hosts=list(pending))
        for host, records in out.results.items():
            for name, member in list(pending[host].items()):
                status = records.get(name.lower())
                if status in HEALTHY:
                    del pending[host][name]
                    last.pop(member, None)
                    self.seen(member)
                else:
                    last[member] = f"heartbeat is {status or 'not reported'}"
        for host, err in out.errors.items():
            for member in pending.get(host, {}).values():
                last[member] = f"{host} could not be read: {err.message}"


def _reader(names: dict[str, list[str]]) -> Callable[[HostCall], dict[str, str | None]]:
    return lambda call: _read(call, names[call.host])


def _read(call: HostCall, names: list[str]) -> dict[str, str | None]:
    """Lower-cased name -> Heartbeat of each asked-for VM this host has (Get-VM matches names case-insensitively)."""
    objects: list[Any] = call.run(single("Get-VM", Name=sorted(names)))
    records = [VmRecord.parse(call.host, o) for o in objects if type_name(o) == "VirtualMachine"]
    return {r.name.lower(): r.heartbeat for r in records}
