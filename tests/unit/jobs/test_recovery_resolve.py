"""Resolving a site, host or plan into ordered groups of replicated VMs (pure: plans, inventory, sweep records)."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.hyperv.hosts import Inventory, parse_inventory
from jobs.recovery.model import Member, ResolvedPlan, Scope, ScopeKind
from jobs.recovery.plans import parse_plan
from jobs.recovery.resolve import NOT_IN_ANY_PLAN, ReplicaPair, ScopeError, pairs_from_sweep, resolve

CORE = """\
name: core
groups:
  - name: identity
    vms: [fw01, "dc*"]
    on_failure: stop
  - name: data
    vms: ["sql*", "ghost*"]
  - name: apps
    vms: [web02, "web*"]
    site: site-a
"""
EDGE = """\
name: edge
groups:
  - name: web on b
    vms: ["web*"]
    host: hv-b1
  - name: again
    vms: [dc01]
"""


def _inventory() -> Inventory:
    hosts = [(n, s) for n, s in (("hv-a1", "site-a"), ("hv-a2", "site-a"), ("hv-b1", "site-b"), ("hv-b2", "site-b"))]
    return parse_inventory({"hosts": [{"name": n, "fqdn": f"{n}.lab.local", "site": s,
                                       "url": f"http://127.0.0.1:5985/{n}"} for n, s in hosts]})


def _row(vm: str, mode: str, partner: str, **kw: Any) -> dict[str, Any]:
    return {"vm": vm, "mode": mode, "state": kw.get("state", "Replicating"), "health": kw.get("health", "Normal"),
            "lag_s": 30, "partner": f"{partner}.lab.local"}


def _entries() -> list[dict[str, Any]]:
    """Site A's hv-a1 answered the last sweep; hv-a2 did not (its VMs are known only from their replica side)."""
    return [
        {"at": 100.0, "host": "hv-a1", "site": "site-a", "error": "", "vms": [
            _row("web01", "Primary", "hv-b1"), _row("dc01", "Primary", "hv-b1"), _row("fw01", "Primary", "hv-b1"),
            _row("sql01", "Primary", "hv-b1", health="Warning"), _row("dc03", "Replica", "hv-b1")]},
        {"at": 100.0, "host": "hv-a2", "site": "site-a", "error": "hv-a2: cannot connect", "vms": []},
        {"at": 101.0, "host": "hv-b1", "site": "site-b", "error": "", "vms": [
            _row("web01", "Replica", "hv-a1"), _row("dc01", "Replica", "hv-a1"), _row("fw01", "Replica", "hv-a1"),
            _row("sql01", "Replica", "hv-a1", health="Warning"), _row("dc03", "Primary", "hv-a1"),
            _row("web03", "Primary", "hv-a1"), _row("mail02", "ExtendedReplica", "hv-b2")]},
        {"at": 101.0, "host": "hv-b2", "site": "site-b", "error": "", "vms": [
            _row("web02", "Replica", "hv-a2", health="Critical"), _row("dc02", "Replica", "hv-a2"),
            _row("mail02", "Replica", "hv-a2"), _row("app09", "TestReplica", "hv-a2")]},
    ]


def _resolve(kind: ScopeKind, value: str, plans: tuple[str, ...] = (CORE,)) -> ResolvedPlan:
    inventory = _inventory()
    loaded = [parse_plan(text, f"{i}.yaml") for i, text in enumerate(plans)]
    return resolve(Scope(kind, value), loaded, pairs_from_sweep(_entries(), inventory), inventory)


def _layout(plan: ResolvedPlan) -> list[tuple[str, list[str]]]:
    return [(g.name, [f"{m.vm}@{m.primary_host}->{m.replica_host}" for m in g.vms]) for g in plan.groups]


def test_pairs_come_from_both_sides_and_the_primary_record_wins():
    pairs = pairs_from_sweep(_entries(), _inventory())
    by = {(p.vm, p.primary_host): p for p in pairs}
    assert by[("sql01", "hv-a1")] == ReplicaPair("sql01", "hv-a1", "hv-b1", "Replicating", "Warning", 30,
                                                 seen_on="hv-a1", seen_at=100.0)
    assert by[("web02", "hv-a2")].seen_on == "hv-b2" and by[("web02", "hv-a2")].health == "Critical"
    assert by[("mail02", "hv-a2")].extended_to == "hv-b1"  # flagged, not a pair of its own
    assert ("app09", "hv-a2") not in by  # a test replica is no failover candidate
    assert ("mail02", "hv-b2") not in by


def test_a_site_resolves_in_plan_order_with_the_rest_in_a_last_group():
    plan = _resolve(ScopeKind.SITE, "site-a")
    assert plan.plan == "" and plan.scope == Scope(ScopeKind.SITE, "site-a")
    assert _layout(plan) == [
        ("core/identity", ["fw01@hv-a1->hv-b1", "dc01@hv-a1->hv-b1", "dc02@hv-a2->hv-b2"]),  # member order, then name
        ("core/data", ["sql01@hv-a1->hv-b1"]),
        ("core/apps", ["web02@hv-a2->hv-b2", "web01@hv-a1->hv-b1"]),  # web02 is named before the pattern
        (NOT_IN_ANY_PLAN, ["mail02@hv-a2->hv-b2"]),
    ]
    assert plan.groups[-1].vms[0] == Member("mail02", "hv-a2", "hv-b2", extended_to="hv-b1")
    assert plan.groups[0].settings.on_failure == "stop"
    assert "plan `core`, group `data`: `ghost*` matches no replicated VM" in plan.warnings


def test_a_host_takes_only_the_vms_whose_primary_runs_there():
    plan = _resolve(ScopeKind.HOST, "hv-a2.lab.local")
    assert _layout(plan) == [("core/identity", ["dc02@hv-a2->hv-b2"]), ("core/apps", ["web02@hv-a2->hv-b2"]),
                             (NOT_IN_ANY_PLAN, ["mail02@hv-a2->hv-b2"])]


def test_site_b_fails_over_its_own_primaries_and_a_group_narrowed_to_site_a_takes_none():
    plan = _resolve(ScopeKind.SITE, "SITE-B")
    assert _layout(plan) == [("core/identity", ["dc03@hv-b1->hv-a1"]), (NOT_IN_ANY_PLAN, ["web03@hv-b1->hv-a1"])]


def test_a_plan_keeps_all_its_groups_and_only_its_vms():
    plan = _resolve(ScopeKind.PLAN, "Core")
    assert plan.plan == "core"
    assert [name for name, _ in _layout(plan)] == ["identity", "data", "apps"]
    assert _layout(plan)[0][1] == ["fw01@hv-a1->hv-b1", "dc01@hv-a1->hv-b1", "dc02@hv-a2->hv-b2",
                                   "dc03@hv-b1->hv-a1"]
    assert all(g.name != NOT_IN_ANY_PLAN for g in plan.groups)
    assert "mail02" not in {m.vm for m in plan.vms()}


def test_a_vm_two_plans_name_stays_in_the_first_with_a_warning():
    plan = _resolve(ScopeKind.SITE, "site-a", (CORE, EDGE))
    assert [g.name for g in plan.groups] == ["core/identity", "core/data", "core/apps", NOT_IN_ANY_PLAN]
    assert "plan `edge`, group `again`: `dc01` is already in group `identity` of plan `core`; it stays there" in (
        plan.warnings)
    b = _resolve(ScopeKind.SITE, "site-b", (CORE, EDGE))
    assert _layout(b) == [("core/identity", ["dc03@hv-b1->hv-a1"]), ("edge/web on b", ["web03@hv-b1->hv-a1"])]


def test_unknown_scopes_name_what_exists():
    with pytest.raises(ScopeError, match="no site is called `site-z`; sites in the inventory: site-a, site-b"):
        _resolve(ScopeKind.SITE, "site-z")
    with pytest.raises(ScopeError, match="no host is called `hv-z9`; hosts in the inventory: hv-a1, hv-a2, hv-b1"):
        _resolve(ScopeKind.HOST, "hv-z9")
    with pytest.raises(ScopeError, match="no recovery plan is called `nope`; known plans: `core`"):
        _resolve(ScopeKind.PLAN, "nope")


def test_a_resolved_plan_round_trips_through_json():
    plan = _resolve(ScopeKind.SITE, "site-a")
    assert ResolvedPlan.from_dict(plan.to_dict()) == plan


def test_before_any_sweep_a_plan_resolves_empty_without_calling_every_pattern_unmatched():
    inventory = _inventory()
    plan = resolve(Scope(ScopeKind.PLAN, "core"), [parse_plan(CORE, "core.yaml")], [], inventory)
    assert [(g.name, g.vms) for g in plan.groups] == [("identity", ()), ("data", ()), ("apps", ())]
    assert plan.warnings == ()
