"""Plans on facts a strict host gives: extended replication, unknown Replica-server facts, a side that could not be
read, and recommendations that follow a failover under way."""

from __future__ import annotations

import pytest

from jobs.failover.plan import Kind, PlanRefused, build_plan, recommend
from tests.unit.jobs.test_failover_plan import FIREWALL, HEALTHY, with_sides

EXTENDED = with_sides(HEALTHY, replica={"extended_to": "hv-c1.lab.local"})


def test_planned_is_refused_while_the_replica_extends_replication_and_says_what_to_do() -> None:
    with pytest.raises(PlanRefused) as refused:
        build_plan(Kind.PLANNED, EXTENDED)
    (reason,) = refused.value.reasons
    assert "hv-b1 also replicates fw01 to hv-c1.lab.local" in reason and "only one replica" in reason
    assert "Remove-VMReplication -VMName fw01 -ReplicationRelationshipType Extended" in reason
    assert "failover fw01 unplanned" in reason
    assert build_plan(Kind.UNPLANNED, EXTENDED).steps and build_plan(Kind.TEST, EXTENDED).steps


def test_reverse_is_refused_on_a_side_that_extends_replication() -> None:
    failed_over = with_sides(EXTENDED, primary={"vm_state": "Off", "state": "Replicating", "mode": "Primary"},
                             replica={"state": "FailedOver"})
    with pytest.raises(PlanRefused, match="extended replication"):
        build_plan(Kind.REVERSE, failed_over)


def test_unknown_facts_are_warnings_and_confirmed_ones_are_none() -> None:
    confirmed = with_sides(HEALTHY, primary={"shutdown_service": "Ok"})
    assert build_plan(Kind.PLANNED, confirmed).warnings == ()
    unknown = build_plan(Kind.PLANNED, with_sides(confirmed, primary={"replica_server_enabled": None}))
    assert [w for w in unknown.warnings if "could not confirm that hv-a1 is a Replica server" in w]
    unknown = build_plan(Kind.PLANNED, HEALTHY)  # the Shutdown service was not reported
    assert [w for w in unknown.warnings if "Shutdown integration service" in w]


def test_planned_is_refused_when_the_guest_cannot_shut_down_and_offers_the_options() -> None:
    with pytest.raises(PlanRefused) as refused:
        build_plan(Kind.PLANNED, with_sides(HEALTHY, primary={"shutdown_service": "Disabled"}))
    (reason,) = refused.value.reasons
    assert "Shutdown integration service on hv-a1 is Disabled" in reason
    assert "Stop-VM -Name fw01 -TurnOff on hv-a1" in reason and "failover fw01 unplanned" in reason
    off = with_sides(HEALTHY, primary={"shutdown_service": None, "vm_state": "Off", "heartbeat": None})
    assert build_plan(Kind.PLANNED, off).steps[0].cmdlet == "Start-VMFailover"


@pytest.mark.parametrize("kind", [Kind.PLANNED, Kind.UNPLANNED, Kind.TEST, Kind.CANCEL, Kind.COMPLETE])
def test_a_side_that_could_not_be_read_is_named_in_the_refusal(kind: Kind) -> None:
    problem = "hv-b1 cannot read the replication of fw01: Replication is not enabled for virtual machine 'fw01'."
    facts = with_sides(HEALTHY, replica={"mode": None, "state": None, "health": None, "problem": problem})
    with pytest.raises(PlanRefused) as refused:
        build_plan(kind, facts)
    assert any(problem in r for r in refused.value.reasons), refused.value.reasons


def test_recommendations_follow_a_failover_under_way() -> None:
    waiting = with_sides(FIREWALL, replica={"state": "FailedOverWaitingCompletion", "vm_state": "Running"})
    assert recommend(waiting, Kind.COMPLETE) is None and recommend(waiting, Kind.CANCEL) is None
    rec = recommend(waiting, Kind.UNPLANNED)
    assert rec is not None and rec.kind is Kind.COMPLETE and "awaits completion" in rec.reason
    planned_stopped = with_sides(HEALTHY, primary={"state": "PreparedForFailover", "vm_state": "Off"},
                                 replica={"state": "FailedOverWaitingCompletion"})
    rec = recommend(planned_stopped, Kind.PLANNED)
    assert rec is not None and rec.kind is Kind.REVERSE
    done = with_sides(FIREWALL, replica={"state": "FailedOver"})
    rec = recommend(done)
    assert rec is not None and rec.kind is Kind.REVERSE and recommend(done, Kind.REVERSE) is None
