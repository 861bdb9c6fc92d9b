"""The shape of a failover plan: numbered steps with host, cmdlet, parameters and their checks.

Kept apart from the plan builders (``jobs.failover.plan``) so each module stays small.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from jobs.failover.facts import Check, RecoveryPoint, ReplicationFacts


class Kind(StrEnum):
    PLANNED = "planned"
    UNPLANNED = "unplanned"
    TEST = "test"
    CANCEL = "cancel"
    COMPLETE = "complete"
    REVERSE = "reverse"


@dataclass(frozen=True)
class PipedInput:
    """A read-only command whose output is piped into the step's cmdlet (binds by value)."""

    cmdlet: str
    parameters: Mapping[str, Any]
    binds_to: str  # the step cmdlet's parameter that receives the piped object


@dataclass(frozen=True)
class Step:
    number: int
    host: str
    cmdlet: str
    parameters: Mapping[str, Any]  # switches are True; -ErrorAction/-Confirm are added when sent
    mutates: bool
    title: str
    preconditions: tuple[Check, ...]
    expected: tuple[Check, ...]
    piped_from: PipedInput | None = None

    def unmet_preconditions(self, facts: ReplicationFacts) -> list[str]:
        return [f for c in self.preconditions if (f := c.failure(facts)) is not None]

    def unmet_expectations(self, facts: ReplicationFacts) -> list[str]:
        return [f for c in self.expected if (f := c.failure(facts)) is not None]

    def sent_parameters(self) -> dict[str, Any]:
        """Exactly what goes on the wire: -ErrorAction Stop always, -Confirm:$false on mutating calls."""
        sent = dict(self.parameters) | {"ErrorAction": "Stop"}
        return sent | {"Confirm": False} if self.mutates else sent

    def render(self) -> str:
        text = _render(self.cmdlet, self.parameters)
        if self.piped_from is not None:
            return f"{_render(self.piped_from.cmdlet, self.piped_from.parameters)} | {text}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number, "host": self.host, "title": self.title, "cmdlet": self.cmdlet,
            "parameters": dict(self.parameters), "mutates": self.mutates, "command": self.render(),
            "preconditions": [c.describe() for c in self.preconditions],
            "expected": [c.describe() for c in self.expected],
        }


@dataclass(frozen=True)
class Plan:
    kind: Kind
    vm: str
    steps: tuple[Step, ...]
    warnings: tuple[str, ...] = ()
    recovery_point: RecoveryPoint | None = None

    @property
    def description(self) -> str:
        return describe(self.kind)

    def signature(self) -> list[list[Any]]:
        """The exact commands, JSON-able: bind an approval to it so a changed plan needs a new approval."""
        return [[s.host, s.render()] for s in self.steps]


class PlanRefused(Exception):
    def __init__(self, kind: Kind | str, vm: str, reasons: list[str]) -> None:
        self.kind, self.vm, self.reasons = kind, vm, reasons
        super().__init__(f"{kind} failover of {vm} refused: " + "; ".join(reasons))


@dataclass
class _Builder:
    """Collects numbered steps and their checks; keeps each plan function short."""

    vm: str
    steps: list[Step] = field(default_factory=list)

    def add(self, host: str, title: str, cmdlet: str, params: Mapping[str, Any], *,
            pre: tuple[Check, ...], post: tuple[Check, ...], mutates: bool = True,
            piped: PipedInput | None = None) -> None:
        number = len(self.steps) + 1
        self.steps.append(Step(number, host, cmdlet, dict(params), mutates, title, pre, post, piped))


def _render(cmdlet: str, params: Mapping[str, Any]) -> str:
    parts = [cmdlet]
    for name, value in params.items():
        if value is True:
            parts.append(f"-{name}")
        elif value is False:
            parts.append(f"-{name}:$false")
        else:
            parts.append(f"-{name} '" + str(value).replace("'", "''") + "'")
    return " ".join(parts)


_DESCRIPTIONS = {
    Kind.PLANNED: "Planned failover: zero data loss. The primary VM must shut down; its pending changes are "
                  "copied to the replica before it takes over. Not for a primary suspected broken: its state "
                  "would be copied too.",
    Kind.UNPLANNED: "Unplanned failover: runs on the replica only. Changes made after the chosen recovery point "
                    "are lost. The primary is left untouched.",
    Kind.TEST: "Test failover: an isolated test VM is created from a recovery point on the replica; production "
               "and replication continue.",
    Kind.CANCEL: "Cancel: stops a failover in progress (removes a test VM, reverts an uncompleted failover, or "
                 "lets a prepared primary start again). Not possible after completion.",
    Kind.COMPLETE: "Complete: commits the failover to the chosen recovery point and deletes all other recovery "
                   "points. It cannot be cancelled afterwards.",
    Kind.REVERSE: "Reverse replication: the new primary replicates back to the old one so the pair is protected "
                  "again, in the new direction.",
}


def describe(kind: Kind | str) -> str:
    return _DESCRIPTIONS[Kind(kind)]
