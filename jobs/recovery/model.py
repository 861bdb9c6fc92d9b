"""Recovery plans: what a plan file says (``RecoveryPlan``) and a plan resolved against the fleet for one run
(``ResolvedPlan``). Plain data shared by the plan loader, the site-failover preview, its execution and drills;
``ResolvedPlan`` round-trips through JSON because approvals bind to it and RQ jobs carry it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class OnFailure(StrEnum):
    STOP = "stop"  # a VM that fails stops the plan after its group
    CONTINUE = "continue"  # reported, and the plan goes on


class ScopeKind(StrEnum):
    SITE = "site"
    HOST = "host"
    PLAN = "plan"


@dataclass(frozen=True)
class PlanGroup:
    """One boot group: VMs by name or fnmatch pattern, optionally narrowed to a site or host."""

    name: str
    members: tuple[str, ...]
    site: str | None = None
    host: str | None = None
    wait_heartbeat: bool = True  # wait for every VM's heartbeat before the next group starts
    delay_s: float = 0.0  # then wait this long
    timeout_s: float = 900.0  # the group's time limit (failover steps and heartbeat)
    on_failure: OnFailure = OnFailure.CONTINUE


@dataclass(frozen=True)
class DrillSchedule:
    every_s: float  # e.g. 30 days
    at: str | None = None  # e.g. "Sun 03:00" (UTC)
    without_approval: bool = False  # still audited


@dataclass(frozen=True)
class RecoveryPlan:
    name: str
    groups: tuple[PlanGroup, ...]
    description: str = ""
    source: str = ""  # file it was read from (for messages that name file and line)
    drill: DrillSchedule | None = None


@dataclass(frozen=True)
class Member:
    """A replicated VM placed in a group: where it runs now and where it would fail over to."""

    vm: str
    primary_host: str | None  # None when the primary side is unknown (its host does not answer)
    replica_host: str
    # The replica host extends replication to this third host (hyperv.md §1.7): the failover runs on the Simple
    # relationship (primary -> replica_host) and the extended relationship follows the replica.
    extended_to: str | None = None


@dataclass(frozen=True)
class ResolvedGroup:
    name: str
    settings: PlanGroup
    vms: tuple[Member, ...]


@dataclass(frozen=True)
class Scope:
    kind: ScopeKind
    value: str  # site name, host name or plan name


@dataclass(frozen=True)
class ResolvedPlan:
    """Every replicated VM a site/host/plan failover concerns, in group order; VMs in no plan form the last
    group. ``plan`` is the plan's name (or "" for a site/host scope without a plan)."""

    scope: Scope
    plan: str
    groups: tuple[ResolvedGroup, ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = ()  # found while resolving: a pattern that matches no VM, a VM two groups match

    def vms(self) -> list[Member]:
        return [m for g in self.groups for m in g.vms]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResolvedPlan:
        def group(g: dict[str, Any]) -> ResolvedGroup:
            s = dict(g["settings"])
            settings = PlanGroup(**{**s, "members": tuple(s["members"]), "on_failure": OnFailure(s["on_failure"])})
            return ResolvedGroup(g["name"], settings, tuple(Member(**m) for m in g["vms"]))

        scope = Scope(ScopeKind(data["scope"]["kind"]), data["scope"]["value"])
        return cls(scope, data["plan"], tuple(group(g) for g in data["groups"]), tuple(data.get("warnings", ())))
