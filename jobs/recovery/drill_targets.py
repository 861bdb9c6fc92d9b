"""What `/hyperv drill PLAN|VM` drills: a recovery plan's replicated VMs in group order, or one VM."""

from __future__ import annotations

from collections.abc import Sequence

from jobs.failover.gather import locate
from jobs.hyperv.fleet import Fleet
from jobs.recovery import plans as plan_files
from jobs.recovery.live import live_pairs
from jobs.recovery.drill_groups import one_group
from jobs.recovery.model import Member, RecoveryPlan, ResolvedGroup, Scope, ScopeKind
from jobs.recovery.resolve import resolve


class DrillTargetError(ValueError):
    """The target names neither a plan nor a replicated VM, or the plan files are broken; one clear message."""


def load_plans() -> tuple[RecoveryPlan, ...]:
    try:
        return plan_files.load_plans()
    except plan_files.PlanError as exc:
        raise DrillTargetError(str(exc)) from None


def find_plan(plans: Sequence[RecoveryPlan], name: str) -> RecoveryPlan | None:
    return next((p for p in plans if p.name.lower() == name.lower()), None)


def plan_groups(fleet: Fleet, plan: RecoveryPlan, plans: Sequence[RecoveryPlan]) -> tuple[ResolvedGroup, ...]:
    """The plan's groups of replicated VMs, in order, resolved as a plan failover resolves them."""
    return resolve(Scope(ScopeKind.PLAN, plan.name), plans, live_pairs(fleet), fleet.inventory).groups


def plan_members(fleet: Fleet, plan: RecoveryPlan, plans: Sequence[RecoveryPlan]) -> list[Member]:
    """The plan's replicated VMs in group order."""
    return [m for g in plan_groups(fleet, plan, plans) for m in g.vms]


def resolve_target(fleet: Fleet, target: str, host: str | None,
                   plans: Sequence[RecoveryPlan]) -> tuple[str, tuple[ResolvedGroup, ...]]:
    """(plan name or "", groups): a plan by name first, else one replicated VM (``host`` picks among twins)."""
    plan = find_plan(plans, target)
    if plan is not None:
        groups = plan_groups(fleet, plan, plans)
        if not any(g.vms for g in groups):
            raise DrillTargetError(f"Recovery plan {plan.name} names no replicated VM of the inventory; "
                                   "check its VM names and patterns.")
        return plan.name, groups
    pair = locate(fleet, target, host)
    return "", one_group([Member(target, pair.primary, pair.replica)])
