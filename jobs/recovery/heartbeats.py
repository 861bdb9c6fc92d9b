"""Waiting for failed-over VMs' guests to answer: Get-VM's Heartbeat on each replica host, polled until every VM
reports a healthy heartbeat or the group's time limit passes.

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


def wait_heartbeats(fleet: Fleet, members: Sequence[Member], *, test: bool, deadline: float, poll_s: float,
                    seen: Callable[[Member], None], stop: threading.Event | None = None) -> dict[Member, str]:
    """Poll until every member's guest reports a healthy heartbeat (``seen`` is called once per member, as it
    happens) or ``deadline`` (time.monotonic) passes; returns the members that never did, with why."""
    pending: dict[str, dict[str, Member]] = {}  # host -> guest name -> member
    for m in members:
        pending.setdefault(m.replica_host, {})[guest_name(m, test)] = m
    last: dict[Member, str] = {m: "no heartbeat reported yet" for m in members}
    stop = stop or threading.Event()
    while pending:
        out = fleet.fan_out(_reader({h: list(names) for h, names in pending.items()}), hosts=list(pending))
        for host, records in out.results.items():
            for name, member in list(pending[host].items()):
                status = records.get(name.lower())
                if status in HEALTHY:
                    del pending[host][name]
                    last.pop(member, None)
                    seen(member)
                else:
                    last[member] = f"heartbeat is {status or 'not reported'}"
        for host, err in out.errors.items():
            for member in pending.get(host, {}).values():
                last[member] = f"{host} could not be read: {err.message}"
        pending = {h: names for h, names in pending.items() if names}
        left = deadline - time.monotonic()
        if not pending or left <= 0:
            break
        stop.wait(min(poll_s, left))  # polling the hosts at the configured pace, bounded by the deadline
    return last


def _reader(names: dict[str, list[str]]) -> Callable[[HostCall], dict[str, str | None]]:
    return lambda call: _read(call, names[call.host])


def _read(call: HostCall, names: list[str]) -> dict[str, str | None]:
    """Lower-cased name -> Heartbeat of each asked-for VM this host has (Get-VM matches names case-insensitively)."""
    objects: list[Any] = call.run(single("Get-VM", Name=sorted(names)))
    records = [VmRecord.parse(call.host, o) for o in objects if type_name(o) == "VirtualMachine"]
    return {r.name.lower(): r.heartbeat for r in records}
