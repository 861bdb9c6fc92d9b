"""What `/hyperv drill PLAN|VM` drills: a recovery plan's replicated VMs in group order, or one VM.

The plan-file loader ``jobs.recovery.plans.load_plans`` is being written alongside this module; until it lands,
``_load_plans_minimal`` below reads the same directory (HVBOT_RECOVERY_PLANS_DIR) in the smallest useful shape.
REPLACE ``_load_plans_minimal`` with ``load_plans`` (and ``members_of`` with ``jobs.recovery.resolve``) at merge.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobs.failover.gather import locate
from jobs.hyperv.commands import single
from jobs.hyperv.fleet import Fleet, HostCall
from jobs.hyperv.records import as_str, enum_name, prop
from jobs.recovery.model import DrillSchedule, Member, PlanGroup, RecoveryPlan

_SPAN = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$", re.IGNORECASE)


class DrillTargetError(ValueError):
    """The target names neither a plan nor a replicated VM; the message says which names exist."""


class PlanDirSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HVBOT_", extra="ignore", hide_input_in_errors=True)
    recovery_plans_dir: Path | None = Field(default=None, description="directory of recovery plan YAML files")


def span_s(text: str) -> float:
    match = _SPAN.match(str(text).strip())
    if not match or not any(match.groups()):
        raise ValueError(f"`{str(text)[:30]}` is not a duration like 30d, 12h or 90m")
    d, h, m, s = (int(g or 0) for g in match.groups())
    return float(((d * 24 + h) * 60 + m) * 60 + s)


def _plan(data: dict[str, Any], source: str) -> RecoveryPlan:
    groups = tuple(PlanGroup(name=str(g.get("name", f"group {i + 1}")), members=tuple(str(v) for v in g["vms"]),
                             site=g.get("site"), host=g.get("host"))
                   for i, g in enumerate(data.get("groups") or []))
    drill = data.get("drill")
    schedule = None if not drill else DrillSchedule(every_s=span_s(drill["every"]), at=drill.get("at"),
                                                    without_approval=bool(drill.get("without_approval", False)))
    return RecoveryPlan(str(data["name"]), groups, str(data.get("description", "")), source, schedule)


def _load_plans_minimal(directory: Path | None = None) -> list[RecoveryPlan]:
    """Minimal reader, to be replaced by ``jobs.recovery.plans.load_plans`` (which validates with file and line)."""
    directory = directory or PlanDirSettings().recovery_plans_dir
    if directory is None or not directory.is_dir():
        return []
    plans = []
    for path in sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")]):
        try:
            plans.append(_plan(yaml.safe_load(path.read_text()), str(path)))
        except (KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
            raise DrillTargetError(f"recovery plan file {path.name} cannot be read: {exc}") from None
    return plans


def load_plans() -> list[RecoveryPlan]:
    return _load_plans_minimal()


def find_plan(plans: Sequence[RecoveryPlan], name: str) -> RecoveryPlan | None:
    return next((p for p in plans if p.name.lower() == name.lower()), None)


def replicated_vms(fleet: Fleet) -> list[Member]:
    """Every replica VM of the inventory with its primary host (Get-VMReplication, Simple, on every host)."""

    def replicas(call: HostCall) -> list[Member]:
        out = []
        for obj in call.run(single("Get-VMReplication", ReplicationRelationshipType="Simple")):
            if enum_name(prop(obj, "ReplicationMode")) != "Replica":
                continue
            primary = as_str(prop(obj, "PrimaryServerName")) or ""
            out.append(Member(as_str(prop(obj, "VMName")) or "", _short(fleet, primary), call.host))
        return out

    found = fleet.fan_out(replicas)
    return [m for host in fleet.hosts if host in found.results for m in found.results[host]]


def _short(fleet: Fleet, server: str) -> str | None:
    for name in (server, server.split(".")[0]):
        try:
            return fleet.inventory.host(name).name
        except KeyError:
            continue
    return None


def members_of(plan: RecoveryPlan, replicas: Sequence[Member]) -> list[Member]:
    """The plan's VMs in group order (names or patterns; a group's host narrows to VMs whose primary runs there)."""
    chosen: list[Member] = []
    for group in plan.groups:
        for m in replicas:
            if m in chosen or (group.host and (m.primary_host or "").lower() != group.host.lower()):
                continue
            if any(fnmatch.fnmatchcase(m.vm.lower(), pattern.lower()) for pattern in group.members):
                chosen.append(m)
    return chosen


def resolve_target(fleet: Fleet, target: str, host: str | None,
                   plans: Sequence[RecoveryPlan]) -> tuple[str, list[Member]]:
    """(plan name or "", members): a plan by name first, else one replicated VM (``host`` picks among twins)."""
    plan = find_plan(plans, target)
    if plan is not None:
        members = members_of(plan, replicated_vms(fleet))
        if not members:
            raise DrillTargetError(f"Recovery plan {plan.name} names no replicated VM of the inventory; "
                                   "check its VM names and patterns.")
        return plan.name, members
    pair = locate(fleet, target, host)
    return "", [Member(target, pair.primary, pair.replica)]
