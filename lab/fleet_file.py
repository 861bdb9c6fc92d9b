"""Fleet files (YAML), the built-in default fleet and generated benchmark fleets.

Format (every key but ``hosts[].name``, ``site`` and ``vms[].name`` is optional)::

    boot_seconds: realistic           # optional: how long a started VM's guest takes to answer its heartbeat:
                                      # a number, or `realistic` (20-60 s, from each VM's name); default 0: at once
    hosts:
      - name: hv-a1                   # short name; fqdn defaults to <name>.lab.local
        fqdn: hv-a1.lab.local
        site: site-a
        allow_script: false           # accept add_script pipelines (never on a JEA configuration)
        replica_server: true          # configured as a Replica server (Get-VMReplicationServer ReplicationEnabled)
        utc_offset_minutes: 60        # the host's time zone; its DateTimes carry this offset (default 0: +00:00)
        jea_configuration: HvBot      # configuration name of a JEA endpoint, or null
        vms:
          - name: fw01
            id: 5d0c...               # default: uuid5 of "<host>/<name>"
            state: Running            # VMState member name
            cpus: 2
            boot_seconds: 40          # heartbeat NoContact for this long after a start (default 0: at once)
            generation: 2
            notes: edge firewall
            boot_seconds: 45          # overrides the fleet's boot_seconds for this VM
            never_heartbeat: false    # true: starts, but its guest never answers (heartbeat NoContact)
            memory: {dynamic: true, startup_mb: 2048, minimum_mb: 512, maximum_mb: 8192, buffer: 20, priority: 50}
            adapters:
              - {name: Network Adapter, switch: vSwitch-LAN, mac: 00155D010101,
                 ipv4: [10.0.1.1], ipv6: ["fd00:1::1"], allow_teaming: On,
                 test_switch: vSwitch-Test}  # TestReplicaSwitchName of the replica's adapter ("" = none)
            checkpoints:              # in creation order; parent names an earlier checkpoint
              - {name: before-patch, type: Standard, age_h: 48}
              - {name: after-patch, type: Planned, age_h: 24, parent: before-patch}
            replica:                  # replicate to a host of another site; the replica VM is created there
              to: hv-b1
              frequency_sec: 300      # 30, 300 or 900
              recovery_history: 4     # extra hourly recovery points (0-24) on the replica
              vss_frequency_hour: 1   # app-consistent points every N hours (0 = none)
              state: Replicating      # primary side; replica_state defaults to the same
              health: Normal          # both sides unless replica_health is given
              last_replication_s: 120 # seconds before load time
              apply_seconds: 6        # optional: log-apply cycles on the replica (lab.timeline), 6 s each
              extended:               # optional: the replica extends replication to a third host
                to: hv-b2
                frequency_sec: 900    # 300 or 900, not below the primary relationship's (hyperv.md §7)

Times in a file are relative to the load time (``age_h``, ``last_replication_s``), so a loaded fleet
always looks current. Nothing is random: ids and MACs derive from names. Every fleet built here runs the
control actions of ``lab.controls`` (``Fleet.apply_control``).
"""

from __future__ import annotations

import uuid
import zlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from lab import controls, timeline
from lab.clock import utc_now
from lab.model import MIB, VM, Checkpoint, Fleet, Host, Memory, NetAdapter, Replication, check_enum

ID_NS = uuid.UUID("6f1c2a47-8a51-4f59-9b8e-2f3c1d7e9a10")
# A new fleet is half-way through its hosts' 12 h monitoring interval, every cycle so far successful (lab.health).
SEEDED_INTERVAL = timedelta(hours=6)


def load_fleet(path: str | Path, now: datetime | None = None) -> Fleet:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("hosts"), list):
        raise ValueError(f"{path}: a fleet file needs a top-level 'hosts:' list")
    return fleet_from_dict(data, now)


def boot_seconds(value: Any, vm_name: str) -> float:
    """A VM's boot time: a number of seconds, or ``realistic``: 20 to 60 s, the same for a name on every run."""
    if value == "realistic":
        return float(20 + zlib.crc32(vm_name.encode()) % 41)
    seconds = float(value)
    if seconds < 0:
        raise ValueError(f"{vm_name}: boot_seconds must be 0 or more, or 'realistic'")
    return seconds


def fleet_from_dict(data: dict[str, Any], now: datetime | None = None) -> Fleet:
    now = now or utc_now()
    hosts: dict[str, Host] = {}
    boot = data.get("boot_seconds", 0)
    for h in data["hosts"]:
        host = Host(name=h["name"], fqdn=h.get("fqdn") or f"{h['name']}.lab.local", site=h["site"],
                    allow_script=bool(h.get("allow_script", False)),
                    jea_configuration=h.get("jea_configuration"),
                    replica_server_enabled=bool(h.get("replica_server", True)),
                    utc_offset_minutes=int(h.get("utc_offset_minutes", 0)))
        host.vms = [_vm(host, {"boot_seconds": boot, **v}, now) for v in h.get("vms") or []]
        hosts[host.name] = host
    fleet = Fleet(hosts, controls=controls.apply)
    for h in data["hosts"]:
        for v in h.get("vms") or []:
            if v.get("replica"):
                _replicate(fleet, fleet.hosts[h["name"]], v, now)
    return fleet


def _vm(host: Host, v: dict[str, Any], now: datetime) -> VM:
    m = v.get("memory") or {}
    startup = int(m.get("startup_mb", 2048)) * MIB
    memory = Memory(dynamic=bool(m.get("dynamic", False)), startup=startup,
                    minimum=int(m.get("minimum_mb", 512 if m.get("dynamic") else m.get("startup_mb", 2048))) * MIB,
                    maximum=int(m.get("maximum_mb", 1048576 if m.get("dynamic") else m.get("startup_mb", 2048))) * MIB,
                    buffer=int(m.get("buffer", 20)), priority=int(m.get("priority", 50)))
    vm_id = uuid.UUID(str(v["id"])) if v.get("id") else uuid.uuid5(ID_NS, f"{host.name}/{v['name']}")
    state = check_enum("VMState", str(v.get("state", "Running")))
    vm = VM(id=vm_id, name=str(v["name"]), memory=memory, state=state, cpu_count=int(v.get("cpus", 2)),
            generation=int(v.get("generation", 2)), version=str(v.get("version", "10.0")),
            notes=str(v.get("notes", "")), creation_time=now - timedelta(days=int(v.get("age_days", 200))),
            boot_seconds=boot_seconds(v.get("boot_seconds", 0), str(v["name"])),
            never_heartbeat=bool(v.get("never_heartbeat", False)))
    if vm.running:
        vm.started_at = now - timedelta(hours=float(v.get("uptime_h", 72)))
        vm.cpu_usage = int(v.get("cpu_usage", 3))
    for i, a in enumerate(v.get("adapters") or []):
        mac = a.get("mac") or uuid.uuid5(ID_NS, f"{vm_id}/{i}").hex[:6].upper().rjust(6, "0")
        vm.adapters.append(NetAdapter(
            name=a.get("name", "Network Adapter"), mac=str(mac if len(str(mac)) == 12 else f"00155D{mac}"),
            switch_name=a.get("switch", "vSwitch-LAN"), ipv4=list(a.get("ipv4", [])), ipv6=list(a.get("ipv6", [])),
            allow_teaming=check_enum("OnOffState", str(a.get("allow_teaming", "Off"))),
            adapter_guid=uuid.uuid5(ID_NS, f"{vm_id}/adapter/{i}"), test_replica_switch=str(a.get("test_switch", ""))))
    by_name: dict[str, uuid.UUID] = {}
    for c in v.get("checkpoints") or []:
        cp = Checkpoint(id=uuid.uuid5(ID_NS, f"{vm_id}/cp/{c['name']}"), name=str(c["name"]),
                        type=check_enum("SnapshotType", str(c.get("type", "Standard"))),
                        creation_time=now - timedelta(hours=float(c.get("age_h", 24))),
                        parent_id=by_name.get(c["parent"]) if c.get("parent") else None)
        by_name[cp.name] = cp.id
        vm.checkpoints.append(cp)
    return vm


def _replicate(fleet: Fleet, host: Host, v: dict[str, Any], now: datetime) -> None:
    r = v["replica"]
    target = fleet.host(r["to"])
    if target.site == host.site:
        raise ValueError(f"{v['name']}: replica host {target.name} is in the same site as {host.name}")
    primary = host.vms_named(v["name"])[0]
    last = now - timedelta(seconds=float(r.get("last_replication_s", 60)))
    common = dict(primary_server=host.fqdn, replica_server=target.fqdn,
                  frequency_sec=int(r.get("frequency_sec", 300)), recovery_history=int(r.get("recovery_history", 0)),
                  vss_frequency_hour=int(r.get("vss_frequency_hour", 0)), last_replication_time=last,
                  last_applied_log_time=last, monitoring_start=now - SEEDED_INTERVAL, counted_until=now)
    stats = dict(successful_count=int(SEEDED_INTERVAL.total_seconds() / int(common["frequency_sec"])),
                 average_size=3 * MIB,
                 maximum_size=24 * MIB, average_latency=timedelta(seconds=4))
    state = check_enum("VMReplicationState", str(r.get("state", "Replicating")))
    health = check_enum("VMReplicationHealthState", str(r.get("health", "Normal")))
    primary.replication = Replication(mode="Primary", state=state, health=health, **common, **stats)
    replica = VM(id=primary.id, name=primary.name, memory=primary.memory, state="Off", cpu_count=primary.cpu_count,
                 generation=primary.generation, version=primary.version, notes=primary.notes,
                 creation_time=primary.creation_time, boot_seconds=primary.boot_seconds,
                 never_heartbeat=primary.never_heartbeat,  # the same guest boots on either side
                 adapters=[a.copy() for a in primary.adapters])
    replica.replication = Replication(
        mode="Replica", state=check_enum("VMReplicationState", str(r.get("replica_state", state))),
        health=check_enum("VMReplicationHealthState", str(r.get("replica_health", health))), **common, **stats)
    replica.checkpoints = _recovery_points(replica, int(common["recovery_history"]),
                                           int(common["vss_frequency_hour"]), last)
    if r.get("apply_seconds"):
        timeline.enable_log_apply(replica.replication, now, float(r["apply_seconds"]))
    target.vms.append(replica)
    if r.get("extended"):
        _extend(fleet, target, replica, r["extended"], int(common["frequency_sec"]), last)


def _extend(fleet: Fleet, host: Host, replica: VM, e: dict[str, Any], primary_frequency: int, last: datetime) -> None:
    """Extended replication of ``replica`` from ``host`` to a third host (hyperv.md §1.7, §1.9)."""
    target = fleet.host(e["to"])
    frequency = int(e.get("frequency_sec", max(300, primary_frequency)))
    if target.name == host.name or target.vm_by_id(replica.id) is not None:
        raise ValueError(f"{replica.name}: extended replica host {target.name} already holds this VM")
    if frequency not in (300, 900) or frequency < primary_frequency:  # hyperv.md §7, extended frequency
        raise ValueError(f"{replica.name}: extended frequency must be 300 or 900 and not below {primary_frequency}")
    common = dict(primary_server=host.fqdn, replica_server=target.fqdn, frequency_sec=frequency,
                  last_replication_time=last, last_applied_log_time=last, monitoring_start=last - SEEDED_INTERVAL,
                  counted_until=last, successful_count=int(SEEDED_INTERVAL.total_seconds() / frequency),
                  average_size=3 * MIB, maximum_size=24 * MIB,
                  average_latency=timedelta(seconds=4))
    replica.extended = Replication(mode="Replica", state="Replicating", health="Normal",
                                   relationship_type="Extended", **common)
    # The extended replica's only relationship is its own, so it reports it as Simple; Get-VM's ReplicationState
    # is computed from the non-extended relationship (hyperv.md §2.1). Inference: the reference shows no
    # Get-VMReplication output of an extended replica server.
    copy = VM(id=replica.id, name=replica.name, memory=replica.memory, state="Off", cpu_count=replica.cpu_count,
              generation=replica.generation, version=replica.version, notes=replica.notes,
              creation_time=replica.creation_time, boot_seconds=replica.boot_seconds,
              never_heartbeat=replica.never_heartbeat,
              adapters=[a.copy() for a in replica.adapters])
    copy.replication = Replication(mode="ExtendedReplica", state="Replicating", health="Normal", **common)
    target.vms.append(copy)


def _recovery_points(vm: VM, history: int, vss_hours: int, latest: datetime) -> list[Checkpoint]:
    """The latest point plus ``history`` hourly points; app-consistent every ``vss_hours`` (§7)."""
    points: list[Checkpoint] = []
    parent: uuid.UUID | None = None
    for age in range(history, -1, -1):
        created = latest - timedelta(hours=age)
        kind = "AppConsistentReplica" if vss_hours and age % vss_hours == 0 and age else "Replica"
        name = f"{vm.name} - ({created:%m/%d/%Y - %I:%M:%S %p})"
        cp = Checkpoint(id=uuid.uuid5(ID_NS, f"{vm.id}/rp/{age}"), name=name, type=kind,
                        creation_time=created, parent_id=parent)
        parent = cp.id
        points.append(cp)
    return points


# --- built-in fleets ---------------------------------------------------------------------------------------

ROLES = ["dc", "web", "sql", "file", "mail", "app", "log", "mon", "build", "jump", "print"]
STATE_BY_SLOT = {7: "Off", 8: "Saved", 9: "Paused"}
NOT_REPLICATED = {5, 10}  # app and print servers stay local


def _vm_spec(host_index: int, slot: int, name: str) -> dict[str, Any]:
    net = host_index + 1
    dynamic = slot % 2 == 0
    spec: dict[str, Any] = {
        "name": name, "state": STATE_BY_SLOT.get(slot, "Running"), "cpus": 2 + slot % 3 * 2,
        "uptime_h": 24 + slot * 7, "cpu_usage": 2 + slot, "age_days": 100 + slot,
        # A SQL server's large buffer asks for more than its maximum (= startup): `memory --at-max` has VMs to show.
        "memory": {"dynamic": dynamic, "startup_mb": 2048 * (1 + slot % 3), "minimum_mb": 512,
                   "maximum_mb": 2048 * (1 + slot % 3) if ROLES[slot] == "sql" else 16384,
                   "buffer": 100 if ROLES[slot] == "sql" else 20, "priority": 50},
        "adapters": [{"name": "Network Adapter", "switch": "vSwitch-LAN", "mac": f"00155D{net:02X}{slot:02X}01",
                      "ipv4": [f"10.0.{net}.{11 + slot}"], "ipv6": [f"fd00:{net}::{11 + slot:x}"] if dynamic else [],
                      "allow_teaming": "On" if slot % 4 == 0 else "Off"}],
    }
    if slot % 3 == 0:
        spec["adapters"].append({"name": "Backup", "switch": "vSwitch-Backup", "mac": f"00155D{net:02X}{slot:02X}02",
                                 "ipv4": [f"192.168.{net}.{11 + slot}"], "allow_teaming": "On"})
    if slot % 4 == 1:
        spec["checkpoints"] = [{"name": "baseline", "type": "Standard", "age_h": 720},
                               {"name": "before-update", "type": "Standard", "age_h": 48, "parent": "baseline"},
                               {"name": "after-update", "type": "Planned", "age_h": 24, "parent": "before-update"}]
    if slot == 3:
        spec["checkpoints"] = [{"name": "pre-migration", "type": "Recovery", "age_h": 10}]
    return spec


def _default_data() -> dict[str, Any]:
    names = [("hv-a1", "site-a", "hv-b1"), ("hv-a2", "site-a", "hv-b2"),
             ("hv-b1", "site-b", "hv-a1"), ("hv-b2", "site-b", "hv-a2")]
    hosts = []
    for hi, (name, site, partner) in enumerate(names):
        vms = []
        for slot, role in enumerate(ROLES):
            vm_name = f"{role}{hi + 1:02d}" if role != "app" or hi not in (1, 3) else "app01"
            spec = _vm_spec(hi, slot, vm_name)
            if slot not in NOT_REPLICATED:
                spec["replica"] = {"to": partner, "frequency_sec": (30, 300, 900)[slot % 3],
                                   "last_replication_s": 20 + slot}
            vms.append(spec)
        # Site A keeps Central European time, site B US Eastern: hosts' DateTimes carry their own offsets.
        hosts.append({"name": name, "site": site, "vms": vms, "utc_offset_minutes": 60 if site == "site-a" else -300})
    hosts[0]["vms"].insert(0, _firewall())
    hosts[3]["vms"][6]["notes"] = "holds 10.0.4.17, the README example"
    # One chain A -> B -> C: mail02 (hv-a2) replicates to hv-b2, which extends it to hv-b1.
    hosts[1]["vms"][4]["replica"]["extended"] = {"to": "hv-b1", "frequency_sec": 900}
    return {"hosts": hosts}


def _firewall() -> dict[str, Any]:
    return {"name": "fw01", "state": "Running", "cpus": 2, "notes": "edge firewall",
            "memory": {"dynamic": False, "startup_mb": 4096},
            "adapters": [{"name": "LAN", "switch": "vSwitch-LAN", "mac": "00155D0100F1", "ipv4": ["10.0.1.1"],
                          "ipv6": ["fd00:1::1"], "allow_teaming": "On"},
                         {"name": "WAN", "switch": "vSwitch-WAN", "mac": "00155D0100F2", "ipv4": ["203.0.113.10"]}],
            "replica": {"to": "hv-b1", "frequency_sec": 30, "recovery_history": 4, "vss_frequency_hour": 2,
                        "last_replication_s": 15}}


def default_fleet(now: datetime | None = None) -> Fleet:
    """4 hosts in 2 sites, 45 VMs (35 replicated across sites, mail02 extended to a third host), fw01 and
    10.0.4.17 included; every host is a Replica server."""
    return fleet_from_dict(_default_data(), now)


def generated_fleet(hosts: int, vms_per_host: int, seed: int = 0, now: datetime | None = None,
                    first: int = 0) -> Fleet:
    """A large benchmark fleet: hosts alternate between site-a and site-b and replicate to their pair.

    ``first`` numbers the hosts from there (hv-<first>...), so several lab processes can serve one fleet.
    """
    if hosts < 1 or vms_per_host < 0 or first < 0:
        raise ValueError("hosts must be >= 1, vms_per_host >= 0 and first >= 0")
    data: dict[str, Any] = {"hosts": []}
    for hi in range(first, first + hosts):
        site = "site-a" if hi % 2 == 0 else "site-b"
        partner = hi + 1 if hi % 2 == 0 else hi - 1
        vms = []
        for j in range(vms_per_host):
            slot = (j + seed) % len(ROLES)
            spec = _vm_spec(hi % 250, slot, f"vm-{hi:03d}-{j:04d}")
            spec["adapters"][0]["ipv4"] = [f"10.{hi % 250}.{j // 250}.{j % 250 + 1}"]
            for k, adapter in enumerate(spec["adapters"]):
                adapter["mac"] = f"00155D{hi % 256:02X}{j // 256 % 256:02X}{(j + k * 128) % 256:02X}"
            if first <= partner < first + hosts and slot not in NOT_REPLICATED:
                spec["replica"] = {"to": f"hv-{partner:03d}", "frequency_sec": 300}
            vms.append(spec)
        data["hosts"].append({"name": f"hv-{hi:03d}", "site": site, "vms": vms})
    return fleet_from_dict(data, now)
