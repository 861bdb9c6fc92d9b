"""Failover step plans: official syntax, happy paths stepped through a small state model, refusals, advice."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from jobs.failover.plan import (
    Kind,
    Plan,
    PlanRefused,
    RecoveryPoint,
    ReplicationFacts,
    SideFacts,
    Step,
    build_plan,
    describe,
    recommend,
)
from tests.support.paths import ROOT

CMDLETS = json.loads((ROOT / "lab" / "data" / "hyperv-cmdlets.json").read_text())
COMMON = set(CMDLETS["common_parameters"])
T = datetime(2026, 5, 1, 3, 0, tzinfo=UTC)
POINTS = (
    RecoveryPoint("fw01 - 01:00", "Replica", T.replace(hour=1), "p1"),
    RecoveryPoint("fw01 - 02:00", "AppConsistentReplica", T.replace(hour=2), "p2"),
    RecoveryPoint("fw01 - 03:00", "Replica", T, "p3"),
    RecoveryPoint("before-upgrade", "Standard", T.replace(hour=0), "s1"),
)
PRIMARY = SideFacts("hv-a1", "hv-a1.lab.local", True, "Primary", "Replicating", "Normal", "Running",
                    "OkApplicationsHealthy", False, T, (), False, None, True)
REPLICA = SideFacts("hv-b1", "hv-b1.lab.local", True, "Replica", "Replicating", "Normal", "Off", None, False, T,
                    POINTS, False, None, True)
HEALTHY = ReplicationFacts("fw01", PRIMARY, REPLICA)
# The seed story: the primary site lost power and came back; the firewall runs but is broken, and the
# replica has received nothing since (health Critical).
FIREWALL = ReplicationFacts(
    "fw01",
    replace(PRIMARY, state="Error", health="Critical", heartbeat="OkApplicationsHealthy", marked_broken=True),
    replace(REPLICA, health="Critical"),
)


def with_sides(facts: ReplicationFacts, **changes: dict[str, Any]) -> ReplicationFacts:
    return replace(facts, primary=replace(facts.primary, **changes.get("primary", {})),
                   replica=replace(facts.replica, **changes.get("replica", {})))


# --- a small model of what each step does (hyperv.md §1.3-1.7), to walk plans step by step ------------------

def apply(step: Step, facts: ReplicationFacts) -> ReplicationFacts:
    side, other = facts.side(step.host), facts.other(step.host)
    p = step.parameters
    new, new_other = side, other
    if step.cmdlet == "Stop-VM":
        new = replace(side, vm_state="Off")
    elif step.cmdlet == "Start-VM":
        new = (replace(side, test_vm_state="Running") if p["Name"].endswith(" - Test")
               else replace(side, vm_state="Running"))
    elif step.cmdlet == "Start-VMFailover" and p.get("Prepare"):
        new = replace(side, state="PreparedForFailover")
    elif step.cmdlet == "Start-VMFailover" and p.get("AsTest"):
        new = replace(side, test_vm_present=True, test_vm_state="Off")
    elif step.cmdlet == "Start-VMFailover":
        new = replace(side, state="FailedOverWaitingCompletion")
    elif step.cmdlet == "Stop-VMFailover":
        new = replace(side, test_vm_present=False, test_vm_state=None, state="Replicating")
    elif step.cmdlet == "Complete-VMFailover":
        new = replace(side, state="FailedOver", health="Warning")
    elif step.cmdlet == "Set-VMReplication" and p.get("AsReplica"):
        new = replace(side, mode="Replica", state="WaitingForInitialReplication")
    elif step.cmdlet == "Set-VMReplication" and "ReplicaServerName" in p:
        new = replace(side, mode="Primary", state="ReadyForInitialReplication")
    elif step.cmdlet == "Set-VMReplication" and p.get("Reverse"):
        new = replace(side, mode="Primary", state="Replicating", health="Normal")
        new_other = replace(other, mode="Replica", state="Replicating", health="Normal")
    elif step.cmdlet == "Start-VMInitialReplication":
        new = replace(side, state="Replicating", health="Normal")
        new_other = replace(other, state="Replicating", health="Normal")
    else:
        raise AssertionError(f"no model for {step.render()}")
    if side is facts.primary:
        return replace(facts, primary=new, replica=new_other)
    return replace(facts, primary=new_other, replica=new)


def walk(plan: Plan, facts: ReplicationFacts) -> ReplicationFacts:
    """Run the plan on the model: each precondition holds before, each expectation after, none before."""
    assert [s.number for s in plan.steps] == list(range(1, len(plan.steps) + 1))
    for step in plan.steps:
        assert step.unmet_preconditions(facts) == [], (step.number, step.render())
        assert step.unmet_expectations(facts) != [], f"step {step.number} expects what already holds"
        facts = apply(step, facts)
        assert step.unmet_expectations(facts) == [], (step.number, step.render())
    return facts


# --- the official syntax ---------------------------------------------------------------------------------

def binds(cmdlet: str, given: dict[str, Any], piped: str | None) -> list[str]:
    """Parameter sets of ``cmdlet`` that the given named parameters (plus a piped one) bind to."""
    doc = CMDLETS["cmdlets"][cmdlet]
    named = {n for n in given if n not in COMMON}
    for name, value in given.items():
        if name in COMMON:
            continue
        is_switch = doc["parameters"][name]["type"] == "SwitchParameter"
        assert isinstance(value, bool) == is_switch, f"{cmdlet} -{name}={value!r}"
    used = named | ({piped} if piped else set())
    ok = []
    for set_name, members in doc["parameter_sets"].items():
        if not used <= set(members):
            continue
        mandatory = {n for n in members if doc["parameters"][n]["sets"].get(set_name, {}).get("required")}
        pipe_ok = piped is None or "ByValue" in doc["parameters"][piped]["pipeline"]
        if mandatory <= used and pipe_ok:
            ok.append(set_name)
    return ok


def all_plans() -> list[Plan]:
    failed_over = with_sides(HEALTHY, primary={"state": "PreparedForFailover", "vm_state": "Off"},
                             replica={"state": "FailedOverWaitingCompletion"})
    after_unplanned = with_sides(FIREWALL, replica={"state": "FailedOver", "vm_state": "Running"})
    return [
        build_plan("planned", HEALTHY), build_plan("unplanned", FIREWALL),
        build_plan("unplanned", FIREWALL, point="fw01 - 01:00"), build_plan("test", HEALTHY),
        build_plan("test", HEALTHY, point="p2"), build_plan("cancel", failed_over),
        build_plan("complete", failed_over), build_plan("reverse", failed_over),
        build_plan("reverse", after_unplanned),
    ]


@pytest.mark.parametrize("plan", all_plans(), ids=lambda p: p.kind.value)
def test_every_step_binds_to_an_official_parameter_set(plan: Plan) -> None:
    for step in plan.steps:
        piped = step.piped_from.binds_to if step.piped_from else None
        assert binds(step.cmdlet, step.sent_parameters(), piped), step.render()
        assert step.sent_parameters()["ErrorAction"] == "Stop"
        assert step.sent_parameters().get("Confirm") is (False if step.mutates else None)
        if step.piped_from is not None:
            assert binds(step.piped_from.cmdlet, dict(step.piped_from.parameters), None)


def test_the_syntax_check_itself_rejects_wrong_bindings() -> None:
    assert binds("Start-VMFailover", {"VMName": "x", "Prepare": True, "AsTest": True}, None) == []
    assert binds("Start-VMFailover", {"AsTest": True}, None) == []
    assert binds("Start-VMFailover", {"AsTest": True}, "VMRecoverySnapshot") == ["VMSnapshot_Test"]
    with pytest.raises(AssertionError):
        binds("Set-VMReplication", {"VMName": "x", "Reverse": "yes"}, None)


# --- happy paths ----------------------------------------------------------------------------------------

def test_planned_failover_runs_the_reference_sequence() -> None:
    plan = build_plan(Kind.PLANNED, HEALTHY)
    assert [(s.host, s.render()) for s in plan.steps] == [
        ("hv-a1", "Stop-VM -Name 'fw01'"),
        ("hv-a1", "Start-VMFailover -VMName 'fw01' -Prepare"),
        ("hv-b1", "Start-VMFailover -VMName 'fw01'"),
        ("hv-b1", "Set-VMReplication -VMName 'fw01' -Reverse"),
        ("hv-b1", "Start-VM -Name 'fw01'"),
    ]
    assert all(s.mutates for s in plan.steps)
    end = walk(plan, HEALTHY)
    assert (end.replica.mode, end.replica.state, end.replica.vm_state) == ("Primary", "Replicating", "Running")
    assert end.primary.mode == "Replica"


def test_planned_skips_the_shutdown_when_the_primary_is_off() -> None:
    facts = with_sides(HEALTHY, primary={"vm_state": "Off"})
    plan = build_plan("planned", facts)
    assert plan.steps[0].render() == "Start-VMFailover -VMName 'fw01' -Prepare"
    walk(plan, facts)


def test_unplanned_runs_on_the_replica_only_and_leaves_the_primary_untouched() -> None:
    plan = build_plan("unplanned", FIREWALL)
    assert {s.host for s in plan.steps} == {"hv-b1"}
    assert [s.render() for s in plan.steps] == ["Start-VMFailover -VMName 'fw01'", "Start-VM -Name 'fw01'"]
    assert plan.recovery_point == POINTS[2]
    assert any("left untouched" in w for w in plan.warnings)
    assert any("lost" in w for w in plan.warnings)
    end = walk(plan, FIREWALL)
    assert end.primary == FIREWALL.primary
    assert (end.replica.state, end.replica.vm_state) == ("FailedOverWaitingCompletion", "Running")


def test_unplanned_to_an_older_recovery_point_pipes_the_snapshot() -> None:
    plan = build_plan("unplanned", HEALTHY, point="fw01 - 01:00")
    first = plan.steps[0]
    assert first.render() == "Get-VMSnapshot -VMName 'fw01' -Name 'fw01 - 01:00' | Start-VMFailover"
    assert first.piped_from is not None and first.piped_from.binds_to == "VMRecoverySnapshot"
    assert plan.recovery_point == POINTS[0]
    assert any("after 2026-05-01 01:00:00 UTC are lost" in w for w in plan.warnings)
    assert any("planned failover would lose nothing" in w for w in plan.warnings)
    walk(plan, HEALTHY)


def test_test_failover_creates_and_starts_an_isolated_test_vm() -> None:
    plan = build_plan("test", HEALTHY, point="p2")
    assert [s.render() for s in plan.steps] == [
        "Get-VMSnapshot -VMName 'fw01' -Name 'fw01 - 02:00' | Start-VMFailover -AsTest",
        "Start-VM -Name 'fw01 - Test'",
    ]
    end = walk(plan, HEALTHY)
    assert end.replica.state == "Replicating" and end.replica.test_vm_state == "Running"
    cleanup = build_plan("cancel", end)
    assert [(s.host, s.render()) for s in cleanup.steps] == [("hv-b1", "Stop-VMFailover -VMName 'fw01'")]
    assert not walk(cleanup, end).replica.test_vm_present


def test_cancel_undoes_an_interrupted_planned_failover_replica_first() -> None:
    facts = with_sides(HEALTHY, primary={"state": "PreparedForFailover", "vm_state": "Off"},
                       replica={"state": "FailedOverWaitingCompletion"})
    plan = build_plan("cancel", facts)
    assert [(s.host, s.cmdlet) for s in plan.steps] == [("hv-b1", "Stop-VMFailover"), ("hv-a1", "Stop-VMFailover")]
    end = walk(plan, facts)
    assert (end.primary.state, end.replica.state) == ("Replicating", "Replicating")


def test_complete_commits_the_failover() -> None:
    facts = with_sides(FIREWALL, replica={"state": "FailedOverWaitingCompletion", "vm_state": "Running"})
    plan = build_plan("complete", facts)
    assert [(s.host, s.render()) for s in plan.steps] == [("hv-b1", "Complete-VMFailover -VMName 'fw01'")]
    assert "cannot" in " ".join(plan.warnings) or "no longer" in " ".join(plan.warnings)
    assert walk(plan, facts).replica.state == "FailedOver"


def test_reverse_after_planned_is_one_step_on_the_new_primary() -> None:
    facts = with_sides(HEALTHY, primary={"state": "PreparedForFailover", "vm_state": "Off"},
                       replica={"state": "FailedOverWaitingCompletion", "vm_state": "Running"})
    plan = build_plan("reverse", facts)
    assert [(s.host, s.render()) for s in plan.steps] == [("hv-b1", "Set-VMReplication -VMName 'fw01' -Reverse")]
    end = walk(plan, facts)
    assert (end.replica.mode, end.primary.mode) == ("Primary", "Replica")


def test_the_seed_story_unplanned_then_reverse_once_the_site_is_back() -> None:
    assert recommend(FIREWALL).kind is Kind.UNPLANNED  # type: ignore[union-attr]
    after_failover = walk(build_plan("unplanned", FIREWALL), FIREWALL)
    reverse = build_plan("reverse", after_failover)
    assert [(s.host, s.render()) for s in reverse.steps] == [
        ("hv-a1", "Stop-VM -Name 'fw01' -TurnOff"),
        ("hv-a1", "Set-VMReplication -VMName 'fw01' -AsReplica"),
        ("hv-b1", "Set-VMReplication -VMName 'fw01' -Reverse -ReplicaServerName 'hv-a1.lab.local'"),
        ("hv-b1", "Start-VMInitialReplication -VMName 'fw01'"),
    ]
    assert any("overwritten" in w for w in reverse.warnings)
    end = walk(reverse, after_failover)
    assert (end.replica.mode, end.replica.state, end.replica.health) == ("Primary", "Replicating", "Normal")
    assert (end.primary.mode, end.primary.vm_state) == ("Replica", "Off")


def test_preconditions_are_checked_on_fresh_facts() -> None:
    plan = build_plan("planned", HEALTHY)
    degraded = with_sides(HEALTHY, primary={"health": "Warning"})
    assert plan.steps[0].unmet_preconditions(degraded) == ["hv-a1: replication health is Normal"]
    lost = with_sides(HEALTHY, primary={"reachable": False})
    unmet = plan.steps[0].unmet_preconditions(lost)
    assert len(unmet) == 4 and all(u.endswith("(the host does not answer)") for u in unmet)


# --- refusals -------------------------------------------------------------------------------------------

REFUSALS = [
    ("planned", with_sides(HEALTHY, primary={"health": "Warning"}), None, "needs replication health Normal"),
    ("planned", with_sides(HEALTHY, primary={"reachable": False}), None, "primary host hv-a1 does not answer"),
    ("planned", FIREWALL, None, "marked broken"),
    ("planned", with_sides(HEALTHY, primary={"replica_server_enabled": False}), None, "not configured as a Replica"),
    ("planned", HEALTHY, "p1", "only for unplanned or test"),
    ("unplanned", with_sides(HEALTHY, replica={"last_replication": None}), None, "not received any replication"),
    ("unplanned", with_sides(HEALTHY, replica={"vm_state": "Running"}), None, "must be Off"),
    ("unplanned", with_sides(HEALTHY, replica={"state": "Error"}), None, "replication state on hv-b1 is Error"),
    ("unplanned", with_sides(HEALTHY, replica={"reachable": False}), None, "replica host hv-b1 does not answer"),
    ("unplanned", HEALTHY, "before-upgrade", "'before-upgrade' is not a valid recovery snapshot of 'fw01'"),
    ("unplanned", HEALTHY, "nope", "'nope' is not a valid recovery snapshot of 'fw01'"),
    ("unplanned", with_sides(HEALTHY, replica={"recovery_points": POINTS + (POINTS[0],)}), "fw01 - 01:00",
     "several snapshots"),
    ("test", with_sides(HEALTHY, replica={"test_vm_present": True}), None, "already exists"),
    ("test", with_sides(HEALTHY, replica={"state": "Resynchronizing"}), None, "state on hv-b1 is Resynchronizing"),
    ("cancel", HEALTHY, None, "no failover of fw01 to cancel"),
    ("cancel", with_sides(HEALTHY, replica={"state": "FailedOver"}), None, "cannot be cancelled"),
    ("complete", HEALTHY, None, "no failover of fw01 awaits completion"),
    ("reverse", HEALTHY, None, "has not failed over"),
    ("reverse", with_sides(FIREWALL, primary={"reachable": False}, replica={"state": "FailedOver"}), None,
     "old primary host hv-a1 is not back yet"),
]


@pytest.mark.parametrize(("kind", "facts", "point", "reason"), REFUSALS,
                         ids=[f"{k}-{r[:24]}" for k, _f, _p, r in REFUSALS])
def test_refusals_say_why(kind: str, facts: ReplicationFacts, point: str | None, reason: str) -> None:
    with pytest.raises(PlanRefused) as refused:
        build_plan(kind, facts, point=point)
    assert any(reason in r for r in refused.value.reasons), refused.value.reasons
    assert refused.value.vm == "fw01" and reason in str(refused.value)


# --- recommendation and descriptions --------------------------------------------------------------------

def test_recommendation_for_the_firewall_story_is_unplanned() -> None:
    rec = recommend(FIREWALL)
    assert rec is not None and rec.kind is Kind.UNPLANNED
    assert "running but marked broken" in rec.reason and "copy that state to the replica" in rec.reason


@pytest.mark.parametrize(("primary", "words"), [
    ({"reachable": False}, "does not answer"),
    ({"heartbeat": "LostCommunication"}, "heartbeat is LostCommunication"),
    ({"vm_state": "RunningCritical"}, "state RunningCritical"),
])
def test_recommendation_unplanned_when_primary_lost_or_unhealthy(primary: dict[str, Any], words: str) -> None:
    rec = recommend(with_sides(HEALTHY, primary=primary))
    assert rec is not None and rec.kind is Kind.UNPLANNED and words in rec.reason


def test_no_recommendation_for_a_healthy_pair_and_blockers_are_named() -> None:
    assert recommend(HEALTHY) is None
    assert recommend(with_sides(HEALTHY, primary={"vm_state": "Off", "heartbeat": "LostCommunication"})) is None
    rec = recommend(with_sides(FIREWALL, replica={"last_replication": None}))
    assert rec is not None and "cannot fail over now" in rec.reason


def test_descriptions_say_what_each_kind_means() -> None:
    assert all(w in describe("planned") for w in ("zero data loss", "shut down", "pending changes", "broken"))
    assert all(w in describe("unplanned") for w in ("replica", "lost", "recovery point", "untouched"))
    assert all(w in describe(Kind.TEST) for w in ("isolated test VM", "replication continue"))
    assert build_plan("planned", HEALTHY).description == describe("planned")


def test_plan_is_json_able_for_the_preview_and_the_approval_binding() -> None:
    plan = build_plan("unplanned", FIREWALL, point="fw01 - 02:00")
    data = json.loads(json.dumps([s.to_dict() for s in plan.steps]))
    assert data[0]["host"] == "hv-b1" and data[0]["mutates"] is True
    assert data[0]["preconditions"] and data[0]["expected"]
    assert plan.signature() == build_plan("unplanned", FIREWALL, point="p2").signature()
    assert plan.signature() != build_plan("unplanned", FIREWALL).signature()


def test_an_unplanned_failover_interrupted_before_its_start_is_finished_by_the_start_alone() -> None:
    """A worker killed between Start-VMFailover and Start-VM: asking again (a resumed site run) starts the VM."""
    interrupted = walk(Plan(Kind.UNPLANNED, "fw01", build_plan("unplanned", FIREWALL).steps[:-1]), FIREWALL)
    assert (interrupted.replica.state, interrupted.replica.vm_state) == ("FailedOverWaitingCompletion", "Off")
    plan = build_plan("unplanned", interrupted)
    assert [(s.host, s.cmdlet) for s in plan.steps] == [("hv-b1", "Start-VM")]
    assert "never started" in plan.warnings[0]
    assert walk(plan, interrupted).replica.vm_state == "Running"
    with pytest.raises(PlanRefused):  # another recovery point would need a new failover, which Hyper-V refuses now
        build_plan("unplanned", interrupted, point="fw01 - 01:00")
    half_planned = with_sides(HEALTHY, primary={"state": "PreparedForFailover", "vm_state": "Off"},
                              replica={"state": "FailedOverWaitingCompletion"})
    with pytest.raises(PlanRefused):  # a planned failover stopped half-way is reversed or cancelled, not started
        build_plan("unplanned", half_planned)
