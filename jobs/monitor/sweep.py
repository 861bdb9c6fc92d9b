"""The replica-health sweep of several hosts: observe, remember, alert, deliver (RQ entry points `run_hosts_sweep`,
and `run_host_sweep` for one host).

A sweep sends `Get-VMReplication` and `Measure-VMReplication` (all VMs, Simple relationships) as two statements of one
invocation, so a host costs one round of exchanges. The frequency only exists on `VMReplication` (hyperv.md §2.3),
health statistics only on `VMReplicationHealth` (§2.4): both are merged per VM. A host that cannot be observed
becomes a `HostObservation(reachable=False)`, which inhibits its VMs' alerts (rq-and-alerting.md §C3).

The observations go into `AlertEngine.ingest`; the returned Notifications go to the process's installed
`jobs.ports.AlertPoster` (the chat side installs it in workers and the monitor).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

import redis
from rq import get_current_job

from jobs import keys
from jobs.backup.window import WindowStore
from jobs.hyperv import process_fleet
from jobs.hyperv.commands import command, pipeline, single
from jobs.hyperv.records import as_int, as_str, enum_name, parse_datetime, prop, type_name
from jobs.monitor import history
from jobs.monitor.rules import AlertRules, HostObservation, ReplicaObservation
from jobs.monitor.state import AlertEngine, Observation
from jobs.ports import AlertPoster, current_poster

log = logging.getLogger("hvbot.sweep")


# ---- observing one host ---------------------------------------------------------------------------------


def _partner(mode: str, primary: str | None, replica: str | None) -> str | None:
    """The other side of the relationship: the replica server for a primary VM, else the primary server."""
    return replica if mode == "Primary" else primary


def replica_observations(host: str, site: str, objects: Iterable[Any]) -> list[ReplicaObservation]:
    """Merge VMReplication (frequency) and VMReplicationHealth (statistics) objects of one host per VM."""
    settings: dict[str, Any] = {}
    health: dict[str, Any] = {}
    for obj in objects:
        key = str(prop(obj, "VMId") or prop(obj, "VMName"))
        (health if type_name(obj) == "VMReplicationHealth" else settings)[key] = obj
    out = []
    for key, obj in {**settings, **health}.items():
        conf = settings.get(key, obj)
        mode = enum_name(prop(obj, "ReplicationMode")) or ""
        out.append(ReplicaObservation(
            host=host, site=site, vm=as_str(prop(obj, "VMName")) or key, mode=mode,
            state=enum_name(prop(obj, "ReplicationState")) or "", health=enum_name(prop(obj, "ReplicationHealth")) or "",
            frequency_sec=as_int(prop(conf, "ReplicationFrequencySec")) or 300,
            last_replication_time=parse_datetime(prop(obj, "LastReplicationTime")),
            successful_count=as_int(prop(obj, "SuccessfulReplicationCount")) or 0,
            missed_count=as_int(prop(obj, "MissedReplicationCount")) or 0,
            partner_host=_partner(mode, as_str(prop(obj, "PrimaryServerName")),
                                  as_str(prop(obj, "ReplicaServerName"))),
        ))
    return sorted(out, key=lambda o: o.vm.lower())


# Each VM's own relationship only: a replica that extends replication would also answer with the Extended one under
# the same VMId (hyperv.md §1.9); the extended replica's host reports that one as its own.
_SWEEP_STATEMENTS = (single("Get-VMReplication", ReplicationRelationshipType="Simple"),
                     single("Measure-VMReplication", ReplicationRelationshipType="Simple"))
# The same on full-language endpoints, trimmed to the properties `replica_observations` reads (10 of 36 per object):
# deserialising whole objects was half of a sweep worker's CPU (bench/sweep.py). `Selected.<type>` keeps the source
# type as the first type name (hyperv.md §5.1), which tells the two kinds apart. JEA's restricted Select-Object
# refuses these names (hyperv.md §6.2): JEA keeps the whole objects.
_COMMON_FIELDS = ["VMId", "VMName", "ReplicationMode", "ReplicationState", "ReplicationHealth", "LastReplicationTime",
                  "PrimaryServerName", "ReplicaServerName"]
_SWEEP_SELECTED = (
    pipeline(command("Get-VMReplication", ReplicationRelationshipType="Simple"),
             command("Select-Object", piped=True, Property=[*_COMMON_FIELDS, "ReplicationFrequencySec"])),
    pipeline(command("Measure-VMReplication", ReplicationRelationshipType="Simple"),
             command("Select-Object", piped=True,
                     Property=[*_COMMON_FIELDS, "SuccessfulReplicationCount", "MissedReplicationCount"])),
)


def observe_hosts(fleet: Any, hosts: Sequence[str]) -> dict[str, list[Observation]]:
    """Each host's replicas plus a reachable HostObservation, or only an unreachable one; the hosts are asked
    at once (one fan-out), so a job sweeping many hosts waits for the network about once, not once per host."""
    result = fleet.fan_out(lambda call: call.run(_SWEEP_STATEMENTS if call.session.restricted else _SWEEP_SELECTED),
                           hosts=list(hosts))
    out: dict[str, list[Observation]] = {}
    for host in hosts:
        site = fleet.config(host).site or ""
        if host in result.errors:
            out[host] = [HostObservation(host, site, reachable=False, error=result.errors[host].message)]
        else:
            out[host] = [HostObservation(host, site, reachable=True),
                         *replica_observations(host, site, result.results[host])]
    return out


def observe_host(fleet: Any, host: str) -> list[Observation]:
    """One host's observations (see `observe_hosts`)."""
    return observe_hosts(fleet, [host])[host]


def failover_vms(client: redis.Redis, vms: Sequence[str]) -> set[str]:
    """Lower-cased names of VMs under a running failover: a VM lock held, or an executing approval naming it."""
    pipe = client.pipeline(transaction=False)
    for vm in vms:
        pipe.exists(keys.vm_lock_key(vm))  # jobs.locks.VmLock: held while a failover runs on the VM
    locked = {vm.lower() for vm, held in zip(vms, pipe.execute()) if held}
    ids = [i.decode() if isinstance(i, bytes) else i for i in client.smembers(keys.approvals_executing_key())]
    for raw in (client.hget(keys.approval_key(i), "params") for i in ids):  # read-only here: params name the VM
        if raw:
            params = json.loads(raw)
            named = params.get("vms") or [params.get("vm")]
            locked |= {str(v).lower() for v in named if v}
    return locked


def enrich(client: redis.Redis, observations: list[Observation], now: datetime) -> list[Observation]:
    """Mark VMs inside a backup window or under a running failover (both suppress alerts, §C3)."""
    replicas = [o for o in observations if isinstance(o, ReplicaObservation)]
    if not replicas:
        return observations
    # Same test as WindowStore.is_in_window (open, started), over the few open windows: one read, not one per VM.
    in_window = {w.vm.lower() for w in WindowStore(client).open_windows() if w.start <= now}
    failing_over = failover_vms(client, [o.vm for o in replicas])
    out: list[Observation] = [o for o in observations if isinstance(o, HostObservation)]
    for o in replicas:
        out.append(replace(o, in_backup_window=o.vm.lower() in in_window, under_failover=o.vm.lower() in failing_over))
    return out


# ---- last results, for `/hyperv replication` ------------------------------------------------------------


def store_last(client: redis.Redis, by_host: Mapping[str, list[Observation]], now: datetime) -> None:
    """The hosts' last results (one HSET for all of them) and their samples for the charts."""
    if not by_host:
        return
    entries = {h: _last_entry(h, obs, now) for h, obs in by_host.items()}
    client.hset(keys.REPLICATION_LAST_KEY,
                mapping={h: json.dumps(e, separators=(",", ":")) for h, e in entries.items()})
    for host in history.hosts_due(client, list(entries), now):
        history.record(client, host, not entries[host]["error"], entries[host]["vms"], now)
    # When the newest result was stored: the chat side refreshes its views when this moves; never backwards.
    client.eval("if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then "
                "redis.call('SET', KEYS[1], ARGV[1]) end", 1, keys.SWEEP_STORED_KEY, repr(now.timestamp()))


def _last_entry(host: str, observations: list[Observation], now: datetime) -> dict[str, Any]:
    hosts = [o for o in observations if isinstance(o, HostObservation)]
    vms = [_vm_row(o, now) for o in observations if isinstance(o, ReplicaObservation)]
    entry = {"at": now.timestamp(), "host": host, "site": hosts[0].site if hosts else "",
             "error": next((h.error for h in hosts if not h.reachable), ""), "vms": vms}
    return entry


def _vm_row(o: ReplicaObservation, now: datetime) -> dict[str, Any]:
    last = o.last_replication_time
    return {"vm": o.vm, "mode": o.mode, "state": o.state, "health": o.health,
            "last_replication": last.isoformat() if last else None,
            "lag_s": max(0, int((now - last).total_seconds())) if last else None,
            "frequency_sec": o.frequency_sec, "partner": o.partner_host or "",
            "in_backup_window": o.in_backup_window, "under_failover": o.under_failover}


def load_last(client: redis.Redis, hosts: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Last sweep entries (every host, or the given ones), in host order."""
    if hosts:
        raws = [r for r in client.hmget(keys.REPLICATION_LAST_KEY, list(hosts)) if r]
    else:
        raws = list(client.hgetall(keys.REPLICATION_LAST_KEY).values())
    return sorted((json.loads(r) for r in raws), key=lambda e: e["host"])


# ---- the job --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepOutcome:
    host: str
    reachable: bool
    vms: int
    notifications: int
    slack_writes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BatchOutcome:
    """A sweep of several hosts: per host whether it answered and how many VMs; one ingest, one delivery."""

    hosts: dict[str, tuple[bool, int]]  # host -> (reachable, VMs seen)
    notifications: int
    slack_writes: int

    def of(self, host: str) -> SweepOutcome:
        reachable, vms = self.hosts[host]
        return SweepOutcome(host, reachable, vms, self.notifications, self.slack_writes)

    def to_dict(self) -> dict[str, Any]:
        return {"hosts": [{"host": h, "reachable": r, "vms": n} for h, (r, n) in self.hosts.items()],
                "notifications": self.notifications, "slack_writes": self.slack_writes}


def sweep_hosts(
    client: redis.Redis, fleet: Any, hosts: Sequence[str], now: datetime, engine: AlertEngine,
    alert_poster: AlertPoster | None,
) -> BatchOutcome:
    """Observe the hosts at once, then remember, alert and deliver for all of them in one pass each."""
    by_host = observe_hosts(fleet, hosts)
    # A window opened after the monitor queued this sweep (at `now`) but before the host answered covers what the
    # host reports: judge window starts at the later of the two times, or a paused VM is a false alert.
    observations = enrich(client, [o for h in hosts for o in by_host[h]], max(now, datetime.now(UTC)))
    enriched: dict[str, list[Observation]] = {h: [] for h in hosts}
    for o in observations:
        enriched[o.host].append(o)
    store_last(client, enriched, now)
    notes = engine.ingest(observations, now)
    writes = alert_poster.deliver(notes, engine) if alert_poster and notes else 0
    seen = {h: (all(o.reachable for o in obs if isinstance(o, HostObservation)),
                sum(isinstance(o, ReplicaObservation) for o in obs)) for h, obs in enriched.items()}
    return BatchOutcome(seen, len(notes), writes)


def sweep_host(
    client: redis.Redis, fleet: Any, host: str, now: datetime, engine: AlertEngine,
    alert_poster: AlertPoster | None,
) -> SweepOutcome:
    return sweep_hosts(client, fleet, [host], now, engine, alert_poster).of(host)


def _run(hosts: list[str], now: str | None, rules: dict[str, Any] | None, alert_prefix: str) -> BatchOutcome:
    job = get_current_job()
    client: redis.Redis = job.connection if job is not None else redis.Redis()
    at = datetime.fromisoformat(now) if now else datetime.now(UTC)
    engine = AlertEngine(client, prefix=alert_prefix, rules=AlertRules.model_validate(rules or {}))
    try:
        return sweep_hosts(client, process_fleet.fleet(), hosts, at, engine, current_poster())
    finally:
        if hosts:  # each host's pending mark goes when the job ends, whatever happened
            client.delete(*[keys.SWEEP_PENDING_KEY.format(h) for h in hosts])


def run_hosts_sweep(
    hosts: list[str], now: str | None = None, rules: dict[str, Any] | None = None,
    alert_prefix: str = keys.ALERTS_PREFIX,
) -> dict[str, Any]:
    """RQ entry point: several hosts in one job (the monitor's sweeps). `now` (ISO 8601) fixes the sweep time."""
    return _run(list(hosts), now, rules, alert_prefix).to_dict()


def run_host_sweep(
    host: str, now: str | None = None, rules: dict[str, Any] | None = None, poster_target: str | None = None,
    alert_prefix: str = keys.ALERTS_PREFIX,
) -> dict[str, Any]:
    """RQ entry point: one host's sweep (sweeps on demand from chat, and jobs queued by older versions)."""
    del poster_target  # named the poster in sweeps queued by older versions; the installed poster is used now
    return _run([host], now, rules, alert_prefix).of(host).to_dict()
