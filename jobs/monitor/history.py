"""Replication history for charts: one sample per VM every 5 min over 24 h, one per host every 15 min over 7 days.

Written by each host's sweep (`record`), read by the chart job (`vm_series`, `fleet_series`). Each series is a Redis
stream whose entry IDs are the start of the sample's time slot (ms): the first sweep of a slot writes it, later
sweeps of the same slot are refused by Redis (an ID must grow), so a series holds at most one entry per slot. Every
write also trims the stream to its window (XADD MINID, exact), and the key expires one window after the last write,
so VMs and hosts that are no longer swept leave nothing behind. The cost is therefore bounded by the slot counts:
288 entries per VM side (24 h / 5 min) and 672 per host (7 d / 15 min); `docs/charts.md` gives the measured bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import redis

from jobs import keys

VM_STEP_S = 300
VM_WINDOW_S = 24 * 3600
HOST_STEP_S = 900
HOST_WINDOW_S = 7 * 24 * 3600
HEALTH_CODES = {"Normal": 0, "Warning": 1, "Critical": 2}  # anything else (NotApplicable, unknown) is 3
HEALTH_NAMES = ("Normal", "Warning", "Critical", "Other")


@dataclass(frozen=True)
class VmSample:
    at: float  # start of the 5-minute slot (epoch seconds)
    host: str
    lag_s: int | None  # None: the host reported no last replication time
    health: str  # one of HEALTH_NAMES


@dataclass(frozen=True)
class HostSample:
    at: float  # start of the 15-minute slot (epoch seconds)
    counts: dict[str, int]  # HEALTH_NAMES -> VM replicas in that health, plus "Unreachable" hosts


def health_code(health: str) -> int:
    return HEALTH_CODES.get(health, 3)


def _slot_id(at: float, step_s: int) -> str:
    return f"{int(at // step_s) * step_s * 1000}-0"


def _min_id(at: float, window_s: int) -> str:
    return str(int((at - window_s) * 1000) + 1)  # the slot exactly one window old goes: window / step entries


def hosts_due(client: redis.Redis, hosts: Sequence[str], now: datetime) -> list[str]:
    """The hosts whose samples of the current 5-minute slot are not written yet, claimed for this caller (one round
    trip). Sweeps come every minute but a slot keeps only its first sample, so the other sweeps skip the writes
    (two commands per VM) instead of having Redis refuse them."""
    slot = _slot_id(now.timestamp(), VM_STEP_S)
    pipe = client.pipeline(transaction=False)
    for host in hosts:
        pipe.set(keys.HISTORY_SLOT_KEY.format(host), slot, ex=2 * VM_STEP_S, get=True)
    before = pipe.execute()
    return [h for h, old in zip(hosts, before, strict=True)
            if (old.decode() if isinstance(old, bytes) else old) != slot]


def record(client: redis.Redis, host: str, reachable: bool, vms: Sequence[dict[str, object]], now: datetime) -> None:
    """One sweep's samples: each VM row (`jobs.monitor.sweep` last-sweep rows: vm, health, lag_s) and the host's
    health counts. One round trip; a slot already written is left as it is."""
    at = now.timestamp()
    pipe = client.pipeline(transaction=False)
    counts = [0, 0, 0, 0]
    for row in vms:
        code = health_code(str(row.get("health", "")))
        counts[code] += 1
        lag = row.get("lag_s")
        key = keys.HISTORY_VM_KEY.format(host, str(row["vm"]).lower())
        pipe.xadd(key, {"l": -1 if lag is None else int(str(lag)), "h": code}, id=_slot_id(at, VM_STEP_S),
                  minid=_min_id(at, VM_WINDOW_S), approximate=False)
        pipe.expire(key, VM_WINDOW_S + VM_STEP_S)
    key = keys.HISTORY_HOST_KEY.format(host)
    fields = {"n": counts[0], "w": counts[1], "c": counts[2], "o": counts[3], "u": 0 if reachable else 1}
    pipe.xadd(key, fields, id=_slot_id(at, HOST_STEP_S), minid=_min_id(at, HOST_WINDOW_S), approximate=False)
    pipe.expire(key, HOST_WINDOW_S + HOST_STEP_S)
    pipe.execute(raise_on_error=False)  # "ID is equal or smaller": this slot already has its sample


def _entries(client: redis.Redis, key: str, since: float) -> list[tuple[float, dict[str, int]]]:
    out = []
    for entry_id, fields in client.xrange(key, min=str(int(since * 1000))):
        ms = int((entry_id.decode() if isinstance(entry_id, bytes) else entry_id).split("-")[0])
        values = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in fields.items()}
        out.append((ms / 1000, values))
    return out


def vm_series(client: redis.Redis, hosts: Iterable[str], vm: str, now: datetime) -> dict[str, list[VmSample]]:
    """The VM's samples of the last 24 h on each host that reported it (primary and replica side), oldest first."""
    since = now.timestamp() - VM_WINDOW_S
    out: dict[str, list[VmSample]] = {}
    for host in hosts:
        rows = _entries(client, keys.HISTORY_VM_KEY.format(host, vm.lower()), since)
        if rows:
            out[host] = [VmSample(at, host, None if f["l"] < 0 else f["l"], HEALTH_NAMES[min(f["h"], 3)])
                         for at, f in rows]
    return out


def fleet_series(client: redis.Redis, hosts: Iterable[str], now: datetime) -> list[HostSample]:
    """Health counts of the given hosts over the last 7 days, summed per 15-minute slot, oldest first."""
    since = now.timestamp() - HOST_WINDOW_S
    slots: dict[float, dict[str, int]] = {}
    for host in hosts:
        for at, f in _entries(client, keys.HISTORY_HOST_KEY.format(host), since):
            total = slots.setdefault(at, dict.fromkeys((*HEALTH_NAMES, "Unreachable"), 0))
            for name, field in zip((*HEALTH_NAMES, "Unreachable"), ("n", "w", "c", "o", "u")):
                total[name] += f.get(field, 0)
    return [HostSample(at, slots[at]) for at in sorted(slots)]
