"""What Hyper-V's replication state names mean, in a line each, for a legend under the messages that show them.

Meanings copied from the Hyper-V reference (VMReplicationState, WS2012 semantics and the WMI mapping), so hvbot
needs no outside page at run time. Plain names (Replicating, Suspended, Disabled) get no legend line.
"""

from __future__ import annotations

from collections.abc import Iterable

STATE_MEANINGS: dict[str, str] = {
    "ReadyForInitialReplication": "replication set up; the initial copy has not started (primary)",
    "InitialReplicationInProgress": "the initial copy is being sent (primary)",
    "WaitingForInitialReplication": "the replica waits for, or is receiving, the initial copy",
    "PreparedForFailover": "a planned failover was prepared on the primary; the VM may not start there",
    "FailedOverWaitingCompletion": "failed over on the replica, not completed yet: complete, cancel or reverse",
    "FailedOver": "failover completed; replication has no direction until it is reversed",
    "Error": "replication is not happening; an admin must act (Hyper-V's Critical state)",
    "WaitingForStartResynchronize": "the primary needs a resynchronization (Resume with resync)",
    "Resynchronizing": "a resynchronization is comparing and sending the disks",
    "ResynchronizeSuspended": "a resynchronization is paused",
    "RecoveryInProgress": "a failover is in progress",
    "FailbackInProgress": "a failback is in progress",
    "FailbackComplete": "a failback has finished",
    "WaitingForUpdateCompletion": "a disk update is in progress",
    "UpdateError": "a disk update failed",
    "WaitingForRepurposeCompletion": "replication is being repurposed",
    "PreparedForSyncReplication": "prepared for synchronous replication",
    "PreparedForGroupReverseReplication": "prepared to reverse replication of a group",
    "FiredrillInProgress": "a test failover is in progress",
}


def state_legend(states: Iterable[object]) -> list[str]:
    """One ``Name: meaning`` line per cryptic state among ``states``, in first-seen order, without repeats."""
    seen = dict.fromkeys(str(s) for s in states if s)
    return [f"{name}: {STATE_MEANINGS[name]}" for name in seen if name in STATE_MEANINGS]


def legend_text(states: Iterable[object]) -> str:
    """The legend as one line for a context block; empty when nothing shown needs explaining."""
    lines = state_legend(states)
    return "States: " + "; ".join(lines) + "." if lines else ""
