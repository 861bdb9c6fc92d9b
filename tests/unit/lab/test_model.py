"""Default fleet invariants, control actions and the replication state machine, driven without I/O."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest

from lab import replication as rp
from lab.fleet_file import default_fleet, generated_fleet, load_fleet
from lab.model import Fleet

NOW = datetime(2025, 6, 2, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def fleet() -> Fleet:
    f = default_fleet(now=NOW)
    f.clock = lambda: NOW
    return f


def test_default_fleet_shape(fleet: Fleet) -> None:
    assert len(fleet.hosts) >= 4
    assert {h.site for h in fleet.hosts.values()} == {"site-a", "site-b"}
    distinct = {vm.id for h in fleet.hosts.values() for vm in h.vms}
    assert len(distinct) >= 40
    primaries = [vm for h in fleet.hosts.values() for vm in h.vms if vm.replication and vm.replication.mode == "Primary"]
    assert len(primaries) > len(distinct) / 2  # most are replicated
    states = Counter(vm.state for h in fleet.hosts.values() for vm in h.vms if vm.replication is None
                     or vm.replication.mode == "Primary")
    assert {"Running", "Off", "Saved", "Paused"} <= set(states)
    memories = {vm.memory.dynamic for h in fleet.hosts.values() for vm in h.vms}
    assert memories == {True, False}
    adapters = [a for h in fleet.hosts.values() for vm in h.vms for a in vm.adapters]
    assert {"On", "Off"} == {a.allow_teaming for a in adapters}
    assert any(a.ipv6 for a in adapters)
    types = {c.type for h in fleet.hosts.values() for vm in h.vms for c in vm.checkpoints}
    assert {"Standard", "Planned", "Replica", "AppConsistentReplica"} <= types
    assert any(c.parent_id for h in fleet.hosts.values() for vm in h.vms for c in vm.checkpoints)


def test_replica_pairs_are_consistent_across_sites(fleet: Fleet) -> None:
    for host in fleet.hosts.values():
        for vm in host.vms:
            if vm.replication is None or vm.replication.mode != "Primary":
                continue
            other_host, replica = fleet.partner(host, vm)  # type: ignore[misc]
            assert other_host.site != host.site
            assert (replica.id, replica.name, replica.state) == (vm.id, vm.name, "Off")
            assert replica.replication and replica.replication.mode == "Replica"
            for side in (vm.replication, replica.replication):
                assert (side.primary_server, side.replica_server) == (host.fqdn, other_host.fqdn)


def test_duplicate_name_on_two_hosts_is_two_vms(fleet: Fleet) -> None:
    by_name: dict[str, set] = {}
    for host in fleet.hosts.values():
        for vm in host.vms:
            by_name.setdefault(vm.name, set()).add(vm.id)
    assert any(len(ids) > 1 for ids in by_name.values())


def test_story_vms(fleet: Fleet) -> None:
    fw = fleet.vm("hv-a1", "fw01")
    assert fw.replication and fw.replication.replica_server == "hv-b1.lab.local"
    replica = fleet.vm("hv-b1", "fw01")
    assert replica.replication and replica.replication.recovery_history > 0
    assert len([c for c in replica.checkpoints if c.type in rp.RECOVERY_TYPES]) == replica.replication.recovery_history + 1
    holders = [vm for h in fleet.hosts.values() for vm in h.vms for a in vm.adapters if "10.0.4.17" in a.ipv4]
    reporting = [vm for vm in holders if vm.reports_ips()]  # the replica copy is Off and reports nothing
    assert len(reporting) == 1 and reporting[0].name == "log04"


def test_ips_only_while_running(fleet: Fleet) -> None:
    vm = fleet.vm("hv-a1", "web01")
    assert vm.reports_ips()
    fleet.apply_control("vm_state", {"host": "hv-a1", "vm": "web01", "state": "off"})
    assert vm.state == "Off" and not vm.reports_ips() and vm.memory_assigned() == 0


def test_deterministic() -> None:
    a, b = default_fleet(now=NOW), default_fleet(now=NOW)
    assert [(vm.id, vm.name, vm.state) for h in a.hosts.values() for vm in h.vms] == \
        [(vm.id, vm.name, vm.state) for h in b.hosts.values() for vm in h.vms]


def test_generated_fleet_pairs_hosts_across_sites() -> None:
    f = generated_fleet(4, 50, now=NOW)
    assert len(f.hosts) == 4 and sum(len(h.vms) for h in f.hosts.values()) > 200
    assert {h.site for h in f.hosts.values()} == {"site-a", "site-b"}


def test_load_fleet_yaml(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text("hosts:\n- name: h1\n  site: s1\n  jea_configuration: HvBot\n  vms:\n  - name: v1\n"
                    "    state: Saved\n    replica: {to: h2}\n- name: h2\n  site: s2\n")
    f = load_fleet(path, now=NOW)
    assert f.hosts["h1"].jea_configuration == "HvBot"
    assert f.vm("h2", "v1").replication.mode == "Replica"  # type: ignore[union-attr]
    path.write_text("hosts:\n- name: h1\n  site: s1\n  vms:\n  - {name: v1, state: Flying}\n")
    with pytest.raises(ValueError, match="VMState"):
        load_fleet(path)


def test_control_errors_are_clear(fleet: Fleet) -> None:
    with pytest.raises(ValueError, match="unknown control action"):
        fleet.apply_control("explode", {})
    with pytest.raises(ValueError, match="no VM named 'ghost'"):
        fleet.apply_control("vm_state", {"host": "hv-a1", "vm": "ghost", "state": "Off"})
    with pytest.raises(ValueError, match="no host named"):
        fleet.apply_control("power_loss", {"host": "nowhere"})


def test_power_loss_and_recover(fleet: Fleet) -> None:
    result = fleet.apply_control("power_loss", {"host": "hv-a1"})
    fw, replica = fleet.vm("hv-a1", "fw01"), fleet.vm("hv-b1", "fw01")
    assert "fw01" in result["vms_off"] and fw.state == "Off"
    assert (fw.replication.state, fw.replication.health) == ("Error", "Critical")  # type: ignore[union-attr]
    assert replica.replication.health == "Critical"  # type: ignore[union-attr]
    fleet.apply_control("recover", {"host": "hv-a1", "broken": ["fw01"]})
    assert fw.state == "Running" and fw.broken and fw.cpu_usage == 100 and not fw.reports_ips()
    assert fw.replication.state == "WaitingForStartResynchronize"  # type: ignore[union-attr]


def test_broken_and_replication_controls(fleet: Fleet) -> None:
    fleet.apply_control("broken", {"host": "hv-a1", "vm": "web01"})
    assert fleet.vm("hv-a1", "web01").heartbeat() == "LostCommunication"
    out = fleet.apply_control("replication", {"host": "hv-b1", "vm": "fw01", "health": "warning"})
    assert out["health"] == "Warning"
    with pytest.raises(ValueError, match="VMReplicationState"):
        fleet.apply_control("replication", {"host": "hv-b1", "vm": "fw01", "state": "Nope"})


def test_unplanned_failover_then_reverse(fleet: Fleet) -> None:
    """The project story: primary site lost, fail over on the replica, reverse once the old primary is back."""
    a1, b1 = fleet.host("hv-a1"), fleet.host("hv-b1")
    fleet.apply_control("power_loss", {"host": "hv-a1"})
    replica = fleet.vm("hv-b1", "fw01")
    point = replica.checkpoints[-2]
    rp.failover(fleet, b1, replica, point.id)
    assert replica.replication.state == "FailedOverWaitingCompletion"  # type: ignore[union-attr]
    rp.complete_failover(fleet, b1, replica)
    assert (replica.replication.state, replica.replication.health) == ("FailedOver", "Warning")  # type: ignore
    assert not [c for c in replica.checkpoints if c.type in rp.RECOVERY_TYPES]
    fleet.apply_control("recover", {"host": "hv-a1"})
    old = fleet.vm("hv-a1", "fw01")
    with pytest.raises(rp.ReplicationError):
        rp.reverse(fleet, b1, replica, "hv-a1.lab.local")  # old primary not yet a replica
    old.state = "Off"
    rp.as_replica(fleet, a1, old)
    rp.reverse(fleet, b1, replica, "hv-a1.lab.local")
    rp.start_initial_replication(fleet, b1, replica)
    assert (replica.replication.mode, replica.replication.state, replica.replication.health) == \
        ("Primary", "Replicating", "Normal")  # type: ignore[union-attr]
    assert (old.replication.mode, old.replication.state) == ("Replica", "Replicating")  # type: ignore[union-attr]


def test_planned_failover_preconditions(fleet: Fleet) -> None:
    a1, b1 = fleet.host("hv-a1"), fleet.host("hv-b1")
    fw, replica = fleet.vm("hv-a1", "fw01"), fleet.vm("hv-b1", "fw01")
    with pytest.raises(rp.ReplicationError, match="current state"):
        rp.prepare_failover(fleet, a1, fw)  # still running
    with pytest.raises(rp.ReplicationError, match="'Prepare' is the only valid parameter"):
        rp.failover(fleet, a1, fw)
    fw.state = "Off"
    rp.prepare_failover(fleet, a1, fw)
    rp.failover(fleet, b1, replica)
    rp.reverse(fleet, b1, replica)
    assert (replica.replication.mode, replica.replication.state) == ("Primary", "Replicating")  # type: ignore
    assert (fw.replication.mode, fw.replication.state) == ("Replica", "Replicating")  # type: ignore[union-attr]


def test_test_failover_and_cleanup(fleet: Fleet) -> None:
    b1 = fleet.host("hv-b1")
    replica = fleet.vm("hv-b1", "fw01")
    test_vm = rp.test_failover(fleet, b1, replica)
    assert test_vm.name == "fw01 - Test" and test_vm.replication.mode == "TestReplica"  # type: ignore[union-attr]
    with pytest.raises(rp.ReplicationError):
        rp.test_failover(fleet, b1, replica)  # one test failover at a time
    rp.stop_failover(fleet, b1, replica)
    assert not b1.vms_named("fw01 - Test") and replica.replication.test_vm_id is None  # type: ignore[union-attr]


def test_suspend_resume_health(fleet: Fleet) -> None:
    a1, b1 = fleet.host("hv-a1"), fleet.host("hv-b1")
    rp.suspend(fleet, b1, fleet.vm("hv-b1", "fw01"))
    assert fleet.vm("hv-b1", "fw01").replication.health == "Critical"  # type: ignore[union-attr]
    rp.suspend(fleet, a1, fleet.vm("hv-a1", "fw01"))
    assert fleet.vm("hv-a1", "fw01").replication.health == "Warning"  # type: ignore[union-attr]
    rp.resume(fleet, a1, fleet.vm("hv-a1", "fw01"))
    assert fleet.vm("hv-b1", "fw01").replication.state == "Replicating"  # type: ignore[union-attr]
    with pytest.raises(rp.ReplicationError):
        rp.resume(fleet, a1, fleet.vm("hv-a1", "fw01"))
