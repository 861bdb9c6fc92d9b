"""The preview of a site, host or plan failover: for every VM of a ``ResolvedPlan`` the same checked single-VM
plan as ``/hyperv failover VM`` (``jobs.failover.plan.build_plan``), plus what it would cost.

Per VM: its replica host, replication state and health, the recovery point the failover would use and its age
(the changes that would be lost), and whatever refuses it. Then totals and one recommendation for the whole
plan. ``binding`` is what one approval binds to: the resolved plan and every VM's step signature, so a plan
whose facts moved between preview and execution no longer matches.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from jobs.failover.facts import FAILED_OVER_STATES, ReplicationFacts
from jobs.failover.plan import Kind, PlanRefused, build_plan, interrupted_before_start, latest_point, recommend
from jobs.hyperv.fleet import Fleet
from jobs.recovery.gather import PlanFacts, gather_plan
from jobs.recovery.model import Member, ResolvedPlan

PLAN_KINDS = (Kind.PLANNED, Kind.UNPLANNED, Kind.TEST)
FOLLOW_UP_KINDS = (Kind.COMPLETE, Kind.CANCEL, Kind.REVERSE)  # after a run, for its whole scope (its summary buttons)


def _point(kind: Kind, facts: ReplicationFacts) -> tuple[str, datetime | None, float | None]:
    """(what is used, its time, seconds of changes lost): a planned failover first sends the remaining changes
    from the running primary (hyperv.md §1.3), so it loses nothing; the others use the replica's latest point."""
    r = facts.replica
    if kind is Kind.PLANNED:
        return "latest state (the primary sends its remaining changes first)", None, 0.0
    point = latest_point(r)
    if point is not None:
        return f"{point.name} ({point.snapshot_type})", point.creation_time, None
    if r.last_replication is not None:  # RecoveryHistory 0: only the latest replicated state exists (§3.5)
        return "latest replication", r.last_replication, None
    return "none", None, None


def _refusals(m: Member, facts: ReplicationFacts, kind: Kind) -> tuple[list[str], dict[str, Any] | None]:
    """(reasons, the plan's summary when it is runnable)."""
    if not m.replica_host:
        return [f"{m.vm} is not replicated, so it has no replica to fail over to"], None
    r = facts.replica
    first: list[str] = []
    finishing = kind is Kind.UNPLANNED and interrupted_before_start(facts)  # a resumed run starts it
    if r.reachable and r.state in FAILED_OVER_STATES and kind in PLAN_KINDS and not finishing:
        first.append(f"{m.vm} has already failed over to {r.host} ({r.state})")
    try:
        plan = build_plan(kind, facts)
    except PlanRefused as refused:
        return first + [x for x in refused.reasons if x not in first], None
    return first, {"steps": len(plan.steps), "signature": plan.signature(), "warnings": list(plan.warnings)}


def vm_row(m: Member, facts: ReplicationFacts, kind: Kind, now: datetime) -> dict[str, Any]:
    r = facts.replica
    refused, runnable = _refusals(m, facts, kind)
    used, at, loss = _point(kind, facts)
    if loss is None and at is not None:
        loss = max(0.0, (now - at).total_seconds())
    notes = list(runnable["warnings"]) if runnable else []
    if r.reachable and r.extended_to:
        notes.append(f"{r.host} extends the replication of {m.vm} to {r.extended_to}")
    rec = recommend(facts, kind)
    return {
        "vm": m.vm, "primary": m.primary_host, "replica": m.replica_host,
        "primary_reachable": facts.primary.reachable, "replica_reachable": r.reachable,
        "state": r.state, "health": r.health, "replica_vm_state": r.vm_state,
        "point": used, "point_time": at.isoformat(timespec="seconds") if at else None,
        "loss_s": round(loss) if loss is not None else None,
        "refused": refused, "notes": notes, "steps": runnable["steps"] if runnable else 0,
        "signature": runnable["signature"] if runnable else [],
        "recommend": {"kind": str(rec.kind), "reason": rec.reason} if rec else None,
    }


def _totals(groups: list[dict[str, Any]], facts: PlanFacts) -> dict[str, Any]:
    rows = [row for g in groups for row in g["vms"]]
    losses = [row["loss_s"] for row in rows if row["loss_s"] is not None and not row["refused"]]
    return {"groups": len(groups), "vms": len(rows), "ready": sum(1 for row in rows if not row["refused"]),
            "refused": sum(1 for row in rows if row["refused"]),
            "replica_hosts": sorted({row["replica"] for row in rows if row["replica"]}),
            "max_loss_s": max(losses, default=None),
            "hosts_not_answering": sorted(facts.host_errors)}


def plan_recommendation(rows: list[dict[str, Any]], kind: Kind, facts: PlanFacts) -> dict[str, Any] | None:
    """The kind most VMs' own recommendation calls for, with the reason in plan terms: the primary site being
    unreachable is what makes unplanned the answer for a dark site."""
    wanted = Counter(row["recommend"]["kind"] for row in rows if row["recommend"])
    if not wanted:
        return None
    best, count = wanted.most_common(1)[0]
    dark = sorted({row["primary"] or "?" for row in rows if not row["primary_reachable"]})
    if best == Kind.UNPLANNED and dark:
        reason = (f"the primary host{'s' if len(dark) > 1 else ''} {', '.join(dark)} do{'es' if len(dark) == 1 else ''}"
                  f" not answer; a planned failover needs them, an unplanned one runs on the replicas alone")
    else:
        reason = next(row["recommend"]["reason"] for row in rows
                      if row["recommend"] and row["recommend"]["kind"] == best)
    return {"kind": best, "reason": f"{reason} ({count} of {len(rows)} VMs)"}


def preview_plan(fleet: Fleet, plan: ResolvedPlan, kind: Kind | str, now: datetime | None = None,
                 deadline_s: float | None = None) -> dict[str, Any]:
    """Everything the preview message and the approval need (JSON-able)."""
    kind = Kind(kind)
    if kind not in PLAN_KINDS + FOLLOW_UP_KINDS:
        raise ValueError(f"a site, host or plan failover is planned, unplanned or test (then complete, cancel or "
                         f"reverse), not {kind}")
    now = now or datetime.now(UTC)
    facts = gather_plan(fleet, plan, deadline_s)
    groups: list[dict[str, Any]] = []
    for g in plan.groups:
        rows = [vm_row(m, facts.facts[m.vm.lower()], kind, now) for m in g.vms]
        groups.append({"name": g.name, "vms": rows})
    rows = [row for g in groups for row in g["vms"]]
    return {"kind": str(kind), "scope": {"kind": str(plan.scope.kind), "value": plan.scope.value},
            "plan_name": plan.plan, "plan": plan.to_dict(), "groups": groups, "totals": _totals(groups, facts),
            "recommendation": plan_recommendation(rows, kind, facts), "host_errors": facts.host_errors,
            "at": now.isoformat(timespec="seconds")}


def binding(data: dict[str, Any]) -> dict[str, Any]:
    """What one approval binds to: the kind, the resolved plan and each VM's plan (its step signature); the
    approval store's digest covers the canonical JSON of exactly this."""
    bound = {"kind": data["kind"], "plan": data["plan"],
             "vms": {row["vm"]: row["signature"] for g in data["groups"] for row in g["vms"]}}
    return json.loads(json.dumps(bound))  # as stored and compared: tuples become lists


def runnable(data: dict[str, Any]) -> bool:
    """At least one VM can fail over (a preview where every VM is refused has nothing to request)."""
    return bool(data.get("totals", {}).get("ready"))
