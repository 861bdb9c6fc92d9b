"""Extended replication and Replica-server facts in the lab (hyperv.md §1.7, §1.9, §2.3, §2.7), driven without I/O."""

from __future__ import annotations

from typing import Any

import pytest

from lab import replication as rp
from lab.cmdlets import HyperVEngine
from lab.fleet_file import fleet_from_dict
from lab.model import Fleet
from tests.support.lab_io import NOW, cmd, run, wire

CHAIN = ("hv-a2", "hv-b2", "hv-b1")  # the default fleet's mail02: A -> B, extended B -> C


def _relationships(fleet: Fleet, host: str, cmdlet: str = "Get-VMReplication", **params: Any) -> list[Any]:
    io = run(HyperVEngine(fleet, host), cmd(cmdlet, VMName=["mail02"], ErrorAction="Stop", **params))
    assert io.failed is None and not io.errors
    return [wire(o) for o in io.out]


def test_the_replica_answers_with_both_relationships_simple_first(fleet: Fleet) -> None:
    a, b, c = (fleet.host(h).fqdn for h in CHAIN)
    for cmdlet in ("Get-VMReplication", "Measure-VMReplication"):
        both = _relationships(fleet, CHAIN[1], cmdlet)
        assert [(str(o.ReplicationRelationshipType), str(o.ReplicationMode), o.PrimaryServerName, o.ReplicaServerName)
                for o in both] == [("Simple", "Replica", a, b), ("Extended", "Replica", b, c)]
        assert len({o.VMId for o in both}) == 1  # one VM, two relationships: keying by VMId loses one
    (simple,) = _relationships(fleet, CHAIN[1], ReplicationRelationshipType="Simple")
    (extended,) = _relationships(fleet, CHAIN[1], ReplicationRelationshipType="Extended")
    assert (simple.ReplicaServerName, extended.ReplicaServerName) == (b, c)
    assert extended.ReplicationFrequencySec == 900


def test_primary_and_extended_replica_each_have_one_relationship(fleet: Fleet) -> None:
    (primary,) = _relationships(fleet, CHAIN[0])
    (far,) = _relationships(fleet, CHAIN[2])
    assert (str(primary.ReplicationMode), str(primary.ReplicationRelationshipType)) == ("Primary", "Simple")
    assert (str(far.ReplicationMode), str(far.ReplicationRelationshipType)) == ("ExtendedReplica", "Simple")
    assert _relationships(fleet, CHAIN[2], ReplicationRelationshipType="Extended") == []


def test_reverse_is_refused_while_the_replica_extends_replication(fleet: Fleet) -> None:
    b = fleet.host(CHAIN[1])
    replica = fleet.vm(CHAIN[1], "mail02")
    rp.failover(fleet, b, replica)
    io = run(HyperVEngine(fleet, CHAIN[1]), cmd("Set-VMReplication", VMName=["mail02"], Reverse=True,
                                                 Confirm=False, ErrorAction="Stop"))
    assert io.failed is not None
    assert "current replication state" in io.failed.Exception.Message
    assert replica.replication is not None and replica.replication.mode == "Replica"  # nothing changed


def test_an_extended_replica_cannot_be_started(fleet: Fleet) -> None:
    io = run(HyperVEngine(fleet, CHAIN[2]), cmd("Start-VM", Name=["mail02"], Confirm=False, ErrorAction="Stop"))
    assert io.failed is not None and fleet.vm(CHAIN[2], "mail02").state == "Off"


def test_replica_server_facts_and_the_control_that_turns_one_off(fleet: Fleet) -> None:
    def enabled(host: str) -> bool:
        (server,) = [wire(o) for o in run(HyperVEngine(fleet, host), cmd("Get-VMReplicationServer")).out]
        return bool(server.ReplicationEnabled)

    assert all(enabled(h) for h in fleet.hosts)
    fleet.apply_control("replica_server", {"host": "hv-a1", "enabled": False})
    assert not enabled("hv-a1") and enabled("hv-b1")


def _file(**replica: Any) -> dict[str, Any]:
    vm = {"name": "app", "replica": {"to": "hv-b1", "frequency_sec": 300, **replica}}
    return {"hosts": [{"name": "hv-a1", "site": "site-a", "vms": [vm]},
                      {"name": "hv-b1", "site": "site-b", "replica_server": False},
                      {"name": "hv-b2", "site": "site-b"}]}


def test_fleet_file_options() -> None:
    fleet = fleet_from_dict(_file(extended={"to": "hv-b2"}), NOW)
    assert fleet.host("hv-b1").replica_server_enabled is False and fleet.host("hv-a1").replica_server_enabled
    extended = fleet.vm("hv-b1", "app").extended
    assert extended is not None and extended.replica_server == "hv-b2.lab.local" and extended.frequency_sec == 300
    far = fleet.vm("hv-b2", "app").replication
    assert far is not None and far.mode == "ExtendedReplica"
    with pytest.raises(ValueError, match="extended frequency"):
        fleet_from_dict(_file(extended={"to": "hv-b2", "frequency_sec": 30}), NOW)


def test_control_actions_for_a_side_without_the_vm_or_its_replication(fleet: Fleet) -> None:
    fleet.apply_control("remove_replication", {"host": "hv-b1", "vm": "fw01"})
    io = run(HyperVEngine(fleet, "hv-b1"), cmd("Get-VMReplication", VMName=["fw01"], ErrorAction="Stop"))
    assert io.failed is not None and "Replication is not enabled" in io.failed.Exception.Message
    fleet.apply_control("delete_vm", {"host": "hv-b1", "vm": "fw01"})
    assert fleet.host("hv-b1").vms_named("fw01") == []


def test_stop_vm_needs_an_answer_when_the_guest_cannot_shut_down(fleet: Fleet) -> None:
    a1 = HyperVEngine(fleet, "hv-a1")
    fleet.apply_control("integration_service", {"host": "hv-a1", "vm": "fw01", "shutdown": False})
    (shutdown,) = [wire(o) for o in run(a1, cmd("Get-VMIntegrationService", VMName=["fw01"], Name=["Shutdown"])).out]
    assert (shutdown.Enabled, str(shutdown.PrimaryOperationalStatus)) == (False, "Disabled")
    io = run(a1, cmd("Stop-VM", Name=["fw01"], Confirm=False, ErrorAction="Stop"))  # -Confirm:$false does not answer it
    assert io.failed is not None and "does not support user interaction" in io.failed.Exception.Message
    assert fleet.vm("hv-a1", "fw01").state == "Running"
    assert run(a1, cmd("Stop-VM", Name=["fw01"], Force=True, Confirm=False)).failed is None
    assert fleet.vm("hv-a1", "fw01").state == "Off"


def test_stop_vm_of_a_healthy_guest_and_turn_off_need_no_answer(fleet: Fleet) -> None:
    a1 = HyperVEngine(fleet, "hv-a1")
    assert run(a1, cmd("Stop-VM", Name=["web01"], Confirm=False, ErrorAction="Stop")).failed is None
    fleet.apply_control("broken", {"host": "hv-a1", "vm": "fw01"})
    assert run(a1, cmd("Stop-VM", Name=["fw01"], ErrorAction="Stop")).failed is not None
    assert run(a1, cmd("Stop-VM", Name=["fw01"], TurnOff=True, ErrorAction="Stop")).failed is None
