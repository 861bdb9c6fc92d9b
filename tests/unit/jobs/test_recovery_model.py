"""A resolved recovery plan survives the JSON round trip that approvals and RQ jobs put it through."""

from __future__ import annotations

import json

from jobs.recovery.model import Member, OnFailure, PlanGroup, ResolvedGroup, ResolvedPlan, Scope, ScopeKind


def test_resolved_plan_round_trips_through_json() -> None:
    dcs = PlanGroup("domain controllers", ("dc*",), site="site-a", on_failure=OnFailure.STOP, delay_s=30)
    plan = ResolvedPlan(Scope(ScopeKind.SITE, "site-a"), "site-a-core", (
        ResolvedGroup("domain controllers", dcs, (Member("dc01", "hv-a1", "hv-b1"),)),
        ResolvedGroup("not in any plan", PlanGroup("not in any plan", ()), (Member("web01", None, "hv-b1"),)),
    ))
    again = ResolvedPlan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again == plan
    assert [m.vm for m in again.vms()] == ["dc01", "web01"]
