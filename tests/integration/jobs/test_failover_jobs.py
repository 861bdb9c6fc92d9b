"""Failover plans executed against the lab over real PSRP: the seed story, planned, test, cancel, complete, points."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.failover.gather import AmbiguousVm, gather, locate
from jobs.failover.plan import Kind
from jobs.failover.run import Run, execute, preview, recovery_points
from jobs.hyperv.fleet import Fleet
from lab.fleet import Lab


def _run(fleet: Fleet, kind: Kind, vm: str = "fw01", point: str | None = None) -> dict[str, Any]:
    pre = preview(fleet, kind, vm, point)
    assert not pre["refused"], pre["refused"]
    steps: list[dict[str, Any]] = []
    out = execute(Run(fleet, kind, vm, locate(fleet, vm), point, pre["signature"], steps.append))
    assert [s["number"] for s in steps] == [s["number"] for s in pre["steps"]][: len(steps)]
    return out


def _starts(lab: Lab, cmdlet: str) -> list[Any]:
    return [e for e in lab.command_log() if e.cmdlet == cmdlet]


def test_seed_story_unplanned_then_reverse(lab_fleet: tuple[Lab, Fleet]) -> None:
    lab, fleet = lab_fleet
    pair = locate(fleet, "fw01")
    lab.control(pair.primary, "power_loss", {})
    lab.control(pair.primary, "recover", {"broken": ["fw01"]})
    pre = preview(fleet, Kind.UNPLANNED, "fw01")
    assert pre["recommendation"]["kind"] == "unplanned", pre["recommendation"]
    assert "heartbeat" in pre["recommendation"]["reason"] or "broken" in pre["recommendation"]["reason"]
    assert preview(fleet, Kind.PLANNED, "fw01")["refused"]  # a planned failover would copy the broken state
    out = _run(fleet, Kind.UNPLANNED)
    assert out["ok"], out
    facts = gather(fleet, "fw01", pair)
    assert facts.replica.vm_state == "Running" and facts.replica.state == "FailedOverWaitingCompletion"
    assert facts.primary.vm_state == "Running" and facts.primary.mode == "Primary"  # untouched (still broken)
    primary_log = [e.cmdlet for e in lab.command_log(pair.primary)]
    assert not {"Stop-VM", "Start-VMFailover", "Set-VMReplication"} & set(primary_log)
    out = _run(fleet, Kind.REVERSE)
    assert out["ok"], out
    after = gather(fleet, "fw01", pair)
    assert after.replica.mode == "Primary" and after.primary.mode == "Replica"
    assert after.replica.state in ("InitialReplicationInProgress", "Replicating")


def test_planned_happy_path_and_refusal(lab_fleet: tuple[Lab, Fleet]) -> None:
    lab, fleet = lab_fleet
    pair = locate(fleet, "fw01")
    out = _run(fleet, Kind.PLANNED)
    assert out["ok"], out
    facts = gather(fleet, "fw01", pair)
    assert facts.replica.vm_state == "Running" and facts.replica.mode == "Primary"
    again = preview(fleet, Kind.PLANNED, "fw01")  # the pair now runs the other way: planned back is possible
    assert (again["primary"], again["replica"]) == (pair.replica, pair.primary) and not again["refused"]


def test_refusal_reason_when_replication_critical(lab_fleet: tuple[Lab, Fleet]) -> None:
    lab, fleet = lab_fleet
    pair = locate(fleet, "fw01")
    lab.control(None, "replication", {"host": pair.primary, "vm": "fw01", "health": "Critical"})
    pre = preview(fleet, Kind.PLANNED, "fw01")
    assert any("health Normal" in r for r in pre["refused"]), pre["refused"]


def test_test_failover_and_cleanup(lab_fleet: tuple[Lab, Fleet]) -> None:
    lab, fleet = lab_fleet
    pair = locate(fleet, "fw01")
    assert _run(fleet, Kind.TEST)["ok"]
    facts = gather(fleet, "fw01", pair)
    assert facts.replica.test_vm_present and facts.replica.test_vm_state == "Running"
    assert facts.primary.vm_state == "Running" and facts.replica.state == "Replicating"
    assert _run(fleet, Kind.CANCEL)["ok"]
    assert not gather(fleet, "fw01", pair).replica.test_vm_present


def test_unplanned_to_older_point_then_complete(lab_fleet: tuple[Lab, Fleet]) -> None:
    lab, fleet = lab_fleet
    points = recovery_points(fleet, "fw01")["points"]
    assert len(points) >= 2
    older = points[0]["name"]
    out = _run(fleet, Kind.UNPLANNED, point=older)
    assert out["ok"], out
    sent = _starts(lab, "Start-VMFailover")
    assert len(sent) == 1 and any(e.cmdlet == "Get-VMSnapshot" and ("Name", older) in e.parameters
                                  for e in lab.command_log())
    assert _run(fleet, Kind.COMPLETE)["ok"]
    pair = locate(fleet, "fw01")
    assert gather(fleet, "fw01", pair).replica.state == "FailedOver"


def test_failed_step_reports_error_state_and_next_actions(lab_fleet: tuple[Lab, Fleet]) -> None:
    lab, fleet = lab_fleet
    pair = locate(fleet, "fw01")
    pre = preview(fleet, Kind.UNPLANNED, "fw01")
    lab.control(None, "vm_state", {"host": pair.replica, "vm": "fw01", "state": "Running"})
    steps: list[dict[str, Any]] = []
    out = execute(Run(fleet, Kind.UNPLANNED, "fw01", pair, None, pre["signature"], steps.append))
    assert not out["ok"] and out["error"]
    assert {s["host"] for s in out["sides"]} == {pair.primary, pair.replica}


def test_unknown_vm_is_a_clear_error(lab_fleet: tuple[Lab, Fleet]) -> None:
    _, fleet = lab_fleet
    with pytest.raises(Exception, match="No replicated VM named nosuch"):
        locate(fleet, "nosuch")
    assert AmbiguousVm("x", [("a", "b"), ("c", "d")]).args[0].count("primary") == 2
