"""Failover, sweep and backup reads against a lab as strict as Hyper-V, through the real pypsrp client: extended
replication, Replica-server facts, a side where the VM is missing or not replicated, advice that follows the state."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.backup.operations import locate as backup_locate
from jobs.backup.operations import read_facts
from jobs.failover.gather import gather, locate
from jobs.failover.plan import Kind
from jobs.failover.run import Run, execute, preview
from jobs.hyperv.commands import single
from jobs.hyperv.errors import PowerShellError
from jobs.hyperv.fleet import Fleet
from jobs.monitor.rules import ReplicaObservation
from jobs.monitor.sweep import observe_host
from lab.fleet import Lab


def _run(fleet: Fleet, kind: Kind, vm: str) -> dict[str, Any]:
    pre = preview(fleet, kind, vm)
    assert not pre["refused"], pre["refused"]
    return execute(Run(fleet, kind, vm, locate(fleet, vm), None, pre["signature"], lambda step: None))


def _mutations(lab: Lab) -> list[str]:
    return [e.cmdlet for e in lab.command_log() if e.cmdlet.startswith(("Start-", "Stop-", "Set-", "Complete-"))]


# --- extended replication (mail02: hv-a2 -> hv-b2, extended hv-b2 -> hv-b1) ------------------------------------


def test_failover_facts_read_the_simple_relationship_and_see_the_extended_one(lab_fleet: tuple[Lab, Fleet]) -> None:
    _, fleet = lab_fleet
    pair = locate(fleet, "mail02")
    assert (pair.primary, pair.replica) == ("hv-a2", "hv-b2")
    facts = gather(fleet, "mail02", pair)
    assert (facts.replica.mode, facts.replica.state) == ("Replica", "Replicating")
    assert facts.replica.extended_to == "hv-b1.lab.local" and facts.primary.extended_to is None


def test_planned_failover_is_refused_while_the_replica_extends_replication(lab_fleet: tuple[Lab, Fleet]) -> None:
    lab, fleet = lab_fleet
    pre = preview(fleet, Kind.PLANNED, "mail02")
    (reason,) = pre["refused"]
    assert "hv-b2 also replicates mail02 to hv-b1.lab.local (extended replication)" in reason
    assert "Remove-VMReplication -VMName mail02 -ReplicationRelationshipType Extended" in reason
    assert "failover mail02 unplanned" in reason and pre["steps"] == []
    assert _mutations(lab) == []


def test_reverse_is_refused_by_the_plan_and_by_the_host(lab_fleet: tuple[Lab, Fleet]) -> None:
    lab, fleet = lab_fleet
    lab.control("hv-a2", "power_loss", {})
    assert _run(fleet, Kind.UNPLANNED, "mail02")["ok"]
    pre = preview(fleet, Kind.REVERSE, "mail02")
    assert pre["refused"] and "extended replication" in pre["refused"][0]
    with pytest.raises(PowerShellError, match="current replication state"):  # what Hyper-V itself says
        fleet.run("hv-b2", single("Set-VMReplication", VMName=["mail02"], Reverse=True))


def test_sweep_observes_each_vm_once_with_its_own_relationship(lab_fleet: tuple[Lab, Fleet]) -> None:
    _, fleet = lab_fleet
    for host, mode, partner in (("hv-b2", "Replica", "hv-a2.lab.local"), ("hv-b1", "ExtendedReplica",
                                                                           "hv-b2.lab.local")):
        seen = [o for o in observe_host(fleet, host) if isinstance(o, ReplicaObservation) and o.vm == "mail02"]
        assert [(o.mode, o.partner_host) for o in seen] == [(mode, partner)]


def test_backup_check_reads_the_replica_relationship(lab_fleet: tuple[Lab, Fleet]) -> None:
    _, fleet = lab_fleet
    pair = backup_locate(fleet, "mail02")
    assert (pair.replica_host, pair.primary_host, pair.extended) == ("hv-b2", "hv-a2", False)
    facts = read_facts(fleet, pair)
    assert (facts.mode, facts.state, facts.primary_state) == ("Replica", "Replicating", "Replicating")


# --- the old primary must be a Replica server ---------------------------------------------------------------------


def test_no_planned_preview_of_the_default_lab_warns_on_its_happy_path(lab_fleet: tuple[Lab, Fleet]) -> None:
    """Every primary of the default lab is a Replica server and its guest answers: nothing to warn about."""
    lab, fleet = lab_fleet
    primaries = sorted({vm.name for host in lab.fleet.hosts.values() for vm in host.vms
                        if vm.replication is not None and vm.replication.mode == "Primary"})
    allowed = [(vm, pre["warnings"]) for vm in primaries if not (pre := preview(fleet, Kind.PLANNED, vm))["refused"]]
    assert len(allowed) >= 10 and all(warnings == [] for _, warnings in allowed), allowed


def test_planned_preview_confirms_the_replica_server_and_refuses_when_it_is_not(lab_fleet: tuple[Lab, Fleet]) -> None:
    lab, fleet = lab_fleet
    pre = preview(fleet, Kind.PLANNED, "fw01")
    assert not pre["refused"] and not any("Replica server" in w for w in pre["warnings"]), pre["warnings"]
    lab.control("hv-a1", "replica_server", {"enabled": False})
    refused = preview(fleet, Kind.PLANNED, "fw01")["refused"]
    assert any("hv-a1 is not configured as a Replica server" in r and "Set-VMReplicationServer" in r
               for r in refused), refused
    assert _mutations(lab) == []


# --- a side where the VM is missing or not replicated ----------------------------------------------------------


@pytest.mark.parametrize(("action", "says"), [("remove_replication", "Replication is not enabled"),
                                               ("delete_vm", "there is no VM named fw01 on hv-b1")])
def test_a_missing_side_is_a_fact_and_a_refusal_not_an_aborted_preview(lab_fleet: tuple[Lab, Fleet], action: str,
                                                                         says: str) -> None:
    lab, fleet = lab_fleet
    lab.control("hv-b1", action, {"vm": "fw01"})
    for kind in (Kind.PLANNED, Kind.UNPLANNED, Kind.TEST):
        pre = preview(fleet, kind, "fw01")
        assert pre["refused"] and any(says in r for r in pre["refused"]), pre["refused"]
    replica = next(s for s in pre["sides"] if s["host"] == "hv-b1")
    assert says in replica["problem"] and replica["reachable"]
    assert _mutations(lab) == []


def test_unreplicated_vm_on_a_named_host_is_a_clear_lookup_error(lab_fleet: tuple[Lab, Fleet]) -> None:
    lab, fleet = lab_fleet
    lab.control("hv-a1", "remove_replication", {"vm": "fw01"})
    with pytest.raises(Exception, match="fw01 on hv-a1 has no replication to fail over: Replication is not enabled"):
        locate(fleet, "fw01", host="hv-a1")


# --- advice follows the state ----------------------------------------------------------------------------------


def test_while_a_failover_awaits_completion_unplanned_is_not_recommended(lab_fleet: tuple[Lab, Fleet]) -> None:
    lab, fleet = lab_fleet
    pair = locate(fleet, "fw01")
    lab.control(pair.primary, "power_loss", {})
    lab.control(pair.primary, "recover", {"broken": ["fw01"]})
    assert preview(fleet, Kind.UNPLANNED, "fw01")["recommendation"]["kind"] == "unplanned"
    assert _run(fleet, Kind.UNPLANNED, "fw01")["ok"]
    complete = preview(fleet, Kind.COMPLETE, "fw01")
    assert not complete["refused"] and complete["recommendation"] is None
    again = preview(fleet, Kind.UNPLANNED, "fw01")
    assert again["recommendation"]["kind"] == "complete" and "awaits completion" in again["recommendation"]["reason"]


# --- Stop-VM cannot ask for confirmation over remoting -----------------------------------------------------


def test_planned_failover_checks_the_shutdown_service_first(lab_fleet: tuple[Lab, Fleet]) -> None:
    lab, fleet = lab_fleet
    assert gather(fleet, "fw01", locate(fleet, "fw01")).primary.shutdown_service == "Ok"
    lab.control("hv-a1", "integration_service", {"vm": "fw01", "shutdown": False})
    with pytest.raises(PowerShellError, match="does not support user interaction"):  # what the host does
        fleet.run("hv-a1", single("Stop-VM", Name=["fw01"]))
    (reason,) = preview(fleet, Kind.PLANNED, "fw01")["refused"]
    assert "Shutdown integration service on hv-a1 is Disabled" in reason
    assert "Stop-VM -Name fw01 -TurnOff on hv-a1" in reason and "failover fw01 unplanned" in reason
    fleet.run("hv-a1", single("Stop-VM", Name=["fw01"], TurnOff=True))  # the operator turns it off ...
    out = _run(fleet, Kind.PLANNED, "fw01")  # ... and the planned failover starts from an Off VM
    assert out["ok"], out
