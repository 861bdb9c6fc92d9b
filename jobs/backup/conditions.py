"""Can this Replica VM be backed up now? The eight conditions of hyperv.md §4, evaluated on plain facts.

A Replica VM backup is only crash-consistent when none of eight conditions holds [BLOG-BKP][MABS]. Hyper-V
exposes some of them directly, some only through indicators, and one (condition 2) not at all (§4). This module turns
facts read from Get-VMReplication / Measure-VMReplication / Get-VM (replica host, plus the primary's state when
it could be read) into a `Readiness` that names every condition with one of four statuses:

- ``holds``: an indicator was observed; the backup must not run now.
- ``clear``: the condition is fully observable and was not observed.
- ``not_seen``: only partly observable (#1, #3, and #5 without the primary); no indicator was seen, but the
  condition may still hold unseen, so it is never claimed clear.
- ``not_observable``: nothing public shows it (condition 2); the backup itself must be retried if it fails.

`ready` is true only when no condition holds and nothing else blocks (e.g. not a Replica VM); the result always
lists the conditions that were not (fully) checked. Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from jobs import units

# §3.2 PowerShell VMReplicationState names (module 2.0.0.0: 22 members).
REPLICATION_STATES = frozenset({
    "Disabled", "ReadyForInitialReplication", "InitialReplicationInProgress", "WaitingForInitialReplication",
    "Replicating", "PreparedForFailover", "FailedOverWaitingCompletion", "FailedOver", "Suspended", "Error",
    "WaitingForStartResynchronize", "Resynchronizing", "ResynchronizeSuspended", "RecoveryInProgress",
    "FailbackInProgress", "FailbackComplete", "WaitingForUpdateCompletion", "UpdateError",
    "WaitingForRepurposeCompletion", "PreparedForSyncReplication", "PreparedForGroupReverseReplication",
    "FiredrillInProgress",
})
HEALTH_STATES = frozenset({"NotApplicable", "Normal", "Warning", "Critical"})  # §3.3
REPLICATION_MODES = frozenset({"None", "Primary", "Replica", "TestReplica", "ExtendedReplica"})  # §3.4

# §4 #6: VMOperationalStatus members that mean the replica VM is being migrated. Storage-only moves are
# counted too (whether the backup engine rejects them is UNCONFIRMED; refusing is the safe side).
MIGRATION_STATUSES = frozenset({
    "MigratingVirtualMachine", "StorageMigrationPhaseOne", "StorageMigrationPhaseTwo", "MigratingPlannedVm",
})
# States the §4 "can back up now" predicate accepts on the replica (Suspended: paused for a backup window).
BACKUP_STATES = frozenset({"Replicating", "Suspended"})


class Status(StrEnum):
    HOLDS = "holds"
    CLEAR = "clear"
    NOT_SEEN = "not_seen"
    NOT_OBSERVABLE = "not_observable"


@dataclass(frozen=True)
class ReplicaBackupFacts:
    """What the replica host (and, when reachable, the primary host) reported for one VM.

    Enum-valued fields hold the PowerShell enum *names* (§3); times are aware datetimes or None.
    `primary_state` is None when the primary could not be read (`primary_unknown`).
    """

    vm: str
    mode: str
    state: str
    health: str
    last_replication_time: datetime | None
    last_applied_log_time: datetime | None
    operational_status: tuple[str, ...] = ()
    test_vm_present: bool = False
    current_tasks: tuple[str, ...] = ()
    health_details: tuple[str, ...] = ()
    primary_state: str | None = None

    def __post_init__(self) -> None:
        _check_member("mode", self.mode, REPLICATION_MODES)
        _check_member("state", self.state, REPLICATION_STATES)
        _check_member("health", self.health, HEALTH_STATES)
        if self.primary_state is not None:
            _check_member("primary_state", self.primary_state, REPLICATION_STATES)
        for name in ("last_replication_time", "last_applied_log_time"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware")

    @property
    def primary_unknown(self) -> bool:
        return self.primary_state is None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("last_replication_time", "last_applied_log_time"):
            data[name] = data[name].isoformat() if data[name] else None
        for name in ("operational_status", "current_tasks", "health_details"):
            data[name] = list(data[name])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReplicaBackupFacts:
        values = dict(data)
        for name in ("last_replication_time", "last_applied_log_time"):
            values[name] = datetime.fromisoformat(values[name]) if values.get(name) else None
        for name in ("operational_status", "current_tasks", "health_details"):
            values[name] = tuple(values.get(name) or ())
        return cls(**values)


def _check_member(field_name: str, value: str, allowed: frozenset[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{field_name} {value!r} is not a known Hyper-V value")


@dataclass(frozen=True)
class Condition:
    """One of the eight conditions (number 1-8) or another blocker (number 0), as evaluated."""

    number: int
    title: str
    status: Status
    detail: str
    transient: bool | None = None  # only meaningful when status is HOLDS
    action: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Condition:
        return cls(**{**data, "status": Status(data["status"])})


@dataclass(frozen=True)
class Readiness:
    vm: str
    conditions: tuple[Condition, ...]
    blockers: tuple[Condition, ...] = field(default=())

    @property
    def holding(self) -> tuple[Condition, ...]:
        """Every condition or blocker that prevents the backup now."""
        return tuple(c for c in self.conditions if c.status is Status.HOLDS) + self.blockers

    @property
    def ready(self) -> bool:
        return not self.holding

    @property
    def transient(self) -> bool:
        """Not ready, and everything in the way is expected to clear by itself."""
        return not self.ready and all(c.transient for c in self.holding)

    @property
    def unchecked(self) -> tuple[Condition, ...]:
        return tuple(c for c in self.conditions if c.status in (Status.NOT_SEEN, Status.NOT_OBSERVABLE))

    def summary(self) -> str:
        """One plain sentence: the verdict, what holds, and what could not be checked."""
        if self.ready:
            return f"{self.vm} is ready for a backup. {self.unchecked_sentence()}"
        kind = "temporarily not ready" if self.transient else "not ready"
        reasons = "; ".join(f"{c.title} (#{c.number})" if c.number else c.title for c in self.holding)
        return f"{self.vm} is {kind}: {reasons}."

    def unchecked_sentence(self) -> str:
        numbers = ", ".join(f"#{c.number}" for c in self.unchecked)
        if not numbers:
            return "All eight conditions were checked."
        return (f"Not checked or only partly checked: {numbers}; a backup can still fail on these, "
                "so retry it if it does.")

    def to_dict(self) -> dict[str, Any]:
        return {
            "vm": self.vm,
            "ready": self.ready,
            "transient": self.transient,
            "summary": self.summary(),
            "conditions": [c.to_dict() for c in self.conditions],
            "blockers": [c.to_dict() for c in self.blockers],
            "unchecked": [c.number for c in self.unchecked],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Readiness:
        return cls(
            vm=data["vm"],
            conditions=tuple(Condition.from_dict(c) for c in data["conditions"]),
            blockers=tuple(Condition.from_dict(c) for c in data.get("blockers", ())),
        )


def evaluate(facts: ReplicaBackupFacts) -> Readiness:
    """Evaluate all eight conditions (in order) and the other blockers for one Replica VM."""
    return Readiness(
        vm=facts.vm,
        conditions=tuple(check(facts) for check in CHECKS),
        blockers=_blockers(facts),
    )


# The titles are the conditions in plain words, as listed in [BLOG-BKP] / [MABS].
TITLES = {
    1: "replication logs (.hrl) are being applied to the Replica VM",
    2: "the previous log apply was cancelled or interrupted",
    3: "the previous log apply failed",
    4: "replica health is Critical",
    5: "the VM needs or is running a resynchronization",
    6: "the Replica VM is being migrated",
    7: "initial replication is in progress or pending",
    8: "a failover is in progress",
}
# The two times are stamped by different steps on the replica; a gap this small is rounding, not a pending apply.
# No reference page gives a figure: our choice, well under a replication interval (30 s at the shortest).
APPLY_TOLERANCE = timedelta(seconds=2)
_RETRY_SOON = "Wait for it to finish; retrying after the next replication interval usually succeeds."


def _holds(number: int, detail: str, transient: bool, action: str) -> Condition:
    return Condition(number, TITLES[number], Status.HOLDS, detail, transient, action)


def _clear(number: int, detail: str) -> Condition:
    return Condition(number, TITLES[number], Status.CLEAR, detail)


def _not_seen(number: int, detail: str) -> Condition:
    return Condition(number, TITLES[number], Status.NOT_SEEN, detail)


def _check_log_apply(f: ReplicaBackupFacts) -> Condition:
    # §4 #1: no direct flag. Received-but-not-applied logs, or any running replication task. Tasks arrive as
    # their ToString() text (nested objects, hyperv.md §5.2) whose wording no reference gives, so every running
    # task counts and none is quoted.
    received, applied = f.last_replication_time, f.last_applied_log_time
    if f.current_tasks:
        count = len(f.current_tasks)
        detail = f"{units.plural(count, 'replication task')} running on the replica host"
        return _holds(1, detail, True, _RETRY_SOON)
    if received is not None and applied is None:
        # A host that reports no LastAppliedLogTime gives no signal at all: unknown, never "holds forever".
        return Condition(1, TITLES[1], Status.NOT_OBSERVABLE,
                         f"last replication received {units.timestamp(received, seconds=True)}; this host reports no "
                         "LastAppliedLogTime, so a log apply cannot be seen")
    if received is not None and applied is not None and received - applied > APPLY_TOLERANCE:
        detail = (f"last replication received {units.timestamp(received, seconds=True)}, last applied "
                  f"{units.timestamp(applied, seconds=True)}")
        return _holds(1, detail, True, _RETRY_SOON)
    return _not_seen(1, "received logs are all applied and no replication task is running; "
                        "an apply that starts now cannot be seen in advance")


def _check_apply_interrupted(f: ReplicaBackupFacts) -> Condition:
    return Condition(2, TITLES[2], Status.NOT_OBSERVABLE,
                     "Hyper-V exposes no property for an interrupted log apply (hyperv.md §4)",
                     action="If the backup fails, retry it.")


def _health_details(f: ReplicaBackupFacts) -> str:
    return "; ".join(f.health_details) or "no health details reported"


def _check_apply_failed(f: ReplicaBackupFacts) -> Condition:
    # §4 #3: no specific flag; a failed apply is expected to show as ReplicationState Error (inference).
    if f.state == "Error":
        return _holds(3, f"replication state is Error ({_health_details(f)})", False,
                      "Read Measure-VMReplication's health details, fix the cause, then resume replication "
                      "(Resume-VMReplication) or resynchronize.")
    return _not_seen(3, f"replication state is {f.state}, not Error; a failed apply has no flag of its own")


def _check_health(f: ReplicaBackupFacts) -> Condition:
    if f.health == "Critical":
        return _holds(4, f"replication health is Critical ({_health_details(f)})", False,
                      "Investigate (connectivity, storage, certificates, event log), then resume replication "
                      "or resynchronize; a pause on the replica side also makes health Critical.")
    return _clear(4, f"replication health is {f.health}")


def _check_resync(f: ReplicaBackupFacts) -> Condition:
    # §4 #5: running resync shows on both sides; "required" shows on the primary only (and as health Critical).
    if f.state == "Resynchronizing" or f.primary_state == "Resynchronizing":
        return _holds(5, "resynchronization is running", True,
                      "Wait for the resynchronization to finish (it can take hours), then retry.")
    if "ResynchronizeSuspended" in (f.state, f.primary_state):
        return _holds(5, "resynchronization is paused", False,
                      "Resume it with Resume-VMReplication (it continues where it stopped).")
    if "WaitingForStartResynchronize" in (f.state, f.primary_state):
        return _holds(5, "resynchronization is required", False,
                      "Start it with Resume-VMReplication -Resynchronize on the primary (expensive; off-peak).")
    if f.primary_unknown:
        return _not_seen(5, "no resynchronization is running on the replica; the primary could not be read, "
                            "and 'resynchronization required' is only visible there (health would be Critical)")
    return _clear(5, f"replica state {f.state}, primary state {f.primary_state}")


def _check_migration(f: ReplicaBackupFacts) -> Condition:
    moving = sorted(MIGRATION_STATUSES.intersection(f.operational_status))
    if moving:
        return _holds(6, "operational status: " + ", ".join(moving), True,
                      "Wait for the migration to finish, then retry.")
    return _clear(6, "no migration in the VM's operational status")


def _check_initial_replication(f: ReplicaBackupFacts) -> Condition:
    if f.primary_state == "ReadyForInitialReplication":
        return _holds(7, "initial replication has not been started", False,
                      "Start it (Start-VMInitialReplication on the primary), then wait for it to finish.")
    states = {"WaitingForInitialReplication", "InitialReplicationInProgress"}
    if f.state in states or f.primary_state in states:
        return _holds(7, "initial replication is pending or running", True,
                      "Wait for initial replication to complete, then retry.")
    if f.last_replication_time is None:
        return _holds(7, "the replica has never received a replication", True,
                      "Wait for initial replication to complete, then retry.")
    return _clear(7, "initial replication has completed")


def _check_failover(f: ReplicaBackupFacts) -> Condition:
    if f.state == "RecoveryInProgress":
        return _holds(8, "a failover is running on the replica", True, "Wait for it to finish, then retry.")
    if f.state == "FailedOverWaitingCompletion":
        return _holds(8, "a failover was started and not completed", False,
                      "Complete it (Complete-VMFailover) or cancel it (Stop-VMFailover).")
    if f.test_vm_present or f.state == "FiredrillInProgress":
        # Whether a test failover blocks the backup engine is UNCONFIRMED (§4 #8); refusing is the safe side.
        return _holds(8, "a test failover is running", False, "End it with Stop-VMFailover on the replica.")
    if f.primary_state == "PreparedForFailover":
        return _holds(8, "a planned failover is being prepared on the primary", False,
                      "Finish or cancel the planned failover first.")
    return _clear(8, "no failover or test failover in progress")


CHECKS = (_check_log_apply, _check_apply_interrupted, _check_apply_failed, _check_health, _check_resync,
          _check_migration, _check_initial_replication, _check_failover)

# Replica states already explained by one of the eight conditions (so not repeated as a blocker).
_EXPLAINED_STATES = frozenset({
    "Error", "Resynchronizing", "ResynchronizeSuspended", "WaitingForStartResynchronize",
    "WaitingForInitialReplication", "InitialReplicationInProgress", "RecoveryInProgress",
    "FailedOverWaitingCompletion", "FiredrillInProgress",
})


def _blockers(f: ReplicaBackupFacts) -> tuple[Condition, ...]:
    """What blocks a Replica-VM backup outside the eight conditions (§4's suggested predicate)."""
    if f.mode not in ("Replica", "ExtendedReplica"):
        return (Condition(0, "not a Replica VM", Status.HOLDS,
                          f"replication mode is {f.mode}; these checks apply to Replica VMs only", False,
                          "Run the check against the VM on its replica host."),)
    if f.state in BACKUP_STATES or f.state in _EXPLAINED_STATES:
        return ()
    note = " (on a Replica VM, Disabled can hide 'resynchronization required')" if f.state == "Disabled" else ""
    return (Condition(0, f"replication state is {f.state}", Status.HOLDS,
                      f"a Replica VM is backed up while Replicating (or Suspended for a backup window){note}",
                      False, "Check the replication on both hosts and bring it back to Replicating."),)
