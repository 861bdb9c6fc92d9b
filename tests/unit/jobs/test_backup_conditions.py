"""The eight Replica-backup conditions (hyperv.md §4): each observable one blocks, cleared means ready."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from jobs.backup.conditions import Readiness, ReplicaBackupFacts, Status, evaluate
from jobs.backup.operations import Reading, replicating_again

RECEIVED = datetime(2026, 5, 4, 10, 0, 0, tzinfo=UTC)


def healthy(**changes: object) -> ReplicaBackupFacts:
    facts = ReplicaBackupFacts(
        vm="web01", mode="Replica", state="Replicating", health="Normal",
        last_replication_time=RECEIVED, last_applied_log_time=RECEIVED + timedelta(seconds=2),
        operational_status=("Ok",), primary_state="Replicating",
    )
    return dataclasses.replace(facts, **changes)


def by_number(readiness: Readiness) -> dict[int, Status]:
    return {c.number: c.status for c in readiness.conditions}


def test_healthy_replica_is_ready_and_says_what_was_not_checked() -> None:
    readiness = evaluate(healthy())
    assert readiness.ready and not readiness.transient
    assert [c.number for c in readiness.conditions] == list(range(1, 9))
    assert by_number(readiness) == {
        1: Status.NOT_SEEN, 2: Status.NOT_OBSERVABLE, 3: Status.NOT_SEEN, 4: Status.CLEAR,
        5: Status.CLEAR, 6: Status.CLEAR, 7: Status.CLEAR, 8: Status.CLEAR,
    }
    assert [c.number for c in readiness.unchecked] == [1, 2, 3]
    assert "Not checked or only partly checked: #1, #2, #3" in readiness.summary()


# (condition number, facts that make it hold, expected transient)
OBSERVABLE_CASES = [
    (1, {"last_applied_log_time": RECEIVED - timedelta(seconds=20)}, True),
    (1, {"current_tasks": ("Applying log",)}, True),
    (3, {"state": "Error"}, False),
    (4, {"health": "Critical", "health_details": ("Replication is in error",)}, False),
    (5, {"state": "Resynchronizing"}, True),
    (5, {"state": "ResynchronizeSuspended"}, False),
    (5, {"primary_state": "WaitingForStartResynchronize"}, False),
    (6, {"operational_status": ("Ok", "MigratingVirtualMachine")}, True),
    (6, {"operational_status": ("StorageMigrationPhaseTwo",)}, True),
    (7, {"state": "WaitingForInitialReplication"}, True),
    (7, {"last_replication_time": None, "last_applied_log_time": None}, True),
    (7, {"primary_state": "ReadyForInitialReplication"}, False),
    (8, {"state": "RecoveryInProgress"}, True),
    (8, {"state": "FailedOverWaitingCompletion"}, False),
    (8, {"test_vm_present": True}, False),
    (8, {"primary_state": "PreparedForFailover"}, False),
]


@pytest.mark.parametrize(("number", "changes", "transient"), OBSERVABLE_CASES)
def test_each_observable_condition_blocks_and_is_named(number: int, changes: dict, transient: bool) -> None:
    readiness = evaluate(healthy(**changes))
    assert not readiness.ready
    holding = {c.number: c for c in readiness.conditions if c.status is Status.HOLDS}
    assert number in holding
    assert holding[number].transient is transient
    assert holding[number].action
    assert f"(#{number})" in readiness.summary()
    assert readiness.transient is all(c.transient for c in readiness.holding)


def test_condition_two_is_never_claimed_clear() -> None:
    for facts in (healthy(), healthy(state="Error"), healthy(primary_state=None)):
        two = evaluate(facts).conditions[1]
        assert two.status is Status.NOT_OBSERVABLE and two.number == 2


def test_unknown_primary_leaves_resync_required_unchecked_but_ready() -> None:
    readiness = evaluate(healthy(primary_state=None))
    assert readiness.ready
    assert by_number(readiness)[5] is Status.NOT_SEEN
    assert 5 in [c.number for c in readiness.unchecked]
    # The replica-side part of #5 is still checked without the primary.
    assert not evaluate(healthy(primary_state=None, state="Resynchronizing")).ready


def test_transient_only_when_every_holding_condition_is() -> None:
    apply_running = {"last_applied_log_time": RECEIVED - timedelta(seconds=5)}
    assert evaluate(healthy(**apply_running)).transient
    assert not evaluate(healthy(health="Critical", **apply_running)).transient


def test_non_replica_vm_and_odd_states_are_blockers() -> None:
    primary = evaluate(healthy(mode="Primary"))
    assert not primary.ready and primary.blockers[0].title == "not a Replica VM"
    disabled = evaluate(healthy(state="Disabled"))
    assert not disabled.ready and "resynchronization required" in disabled.blockers[0].detail
    assert evaluate(healthy(state="Suspended")).ready  # paused for a backup window, health not Critical


def test_facts_reject_unknown_enum_names_and_naive_times() -> None:
    with pytest.raises(ValueError, match="state"):
        healthy(state="Replicate")
    with pytest.raises(ValueError, match="timezone"):
        healthy(last_replication_time=datetime(2026, 5, 4, 10, 0))


def test_readiness_and_facts_round_trip_through_json() -> None:
    facts = healthy(current_tasks=("Applying log",), primary_state=None)
    assert ReplicaBackupFacts.from_dict(json.loads(json.dumps(facts.to_dict()))) == facts
    readiness = evaluate(facts)
    data = json.loads(json.dumps(readiness.to_dict()))
    assert data["ready"] is False and data["unchecked"] == [2, 3, 5]
    assert Readiness.from_dict(data) == readiness


def test_a_missing_apply_time_is_unknown_not_holding_forever() -> None:
    """No LastAppliedLogTime: condition 1 cannot be seen (the backup may go ahead and is retried if it fails)."""
    readiness = evaluate(healthy(last_applied_log_time=None))
    one = readiness.conditions[0]
    assert one.status is Status.NOT_OBSERVABLE and "reports no LastAppliedLogTime" in one.detail
    assert readiness.ready and "#1" in readiness.unchecked_sentence()


def test_an_apply_time_within_the_tolerance_counts_as_applied() -> None:
    within = evaluate(healthy(last_applied_log_time=RECEIVED - timedelta(seconds=1)))
    beyond = evaluate(healthy(last_applied_log_time=RECEIVED - timedelta(seconds=3)))
    assert within.conditions[0].status is Status.NOT_SEEN and within.ready
    assert beyond.conditions[0].status is Status.HOLDS and beyond.transient


def test_a_resume_counts_only_when_a_new_replication_arrived() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    before = Reading("Suspended", "Warning", t0)
    assert replicating_again(Reading("Replicating", "Warning", t0 + timedelta(seconds=1)), before, resumed=True)
    assert not replicating_again(Reading("Replicating", "Normal", t0), before, resumed=True)  # nothing new yet
    assert not replicating_again(Reading("Replicating", "Critical", t0 + timedelta(1)), before, resumed=True)
    assert not replicating_again(Reading("Suspended", "Warning", t0 + timedelta(1)), before, resumed=True)
    # already running before hvbot looked (someone else resumed it): nothing to compare with
    assert replicating_again(Reading("Replicating", "Normal", t0), Reading("Replicating", "Normal", t0), False)
