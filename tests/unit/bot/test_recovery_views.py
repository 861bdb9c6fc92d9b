"""Recovery plan views within Slack's limits at site scale (the two-site lab fleet: 120 VMs a site), and their
wording of settings, durations and a sweep that never ran."""

from __future__ import annotations

import json

from bot.views import common
from bot.views import recovery as views
from jobs.hyperv.hosts import parse_inventory
from jobs.recovery.model import DrillSchedule, PlanGroup, RecoveryPlan, Scope, ScopeKind
from jobs.recovery.plans import load_plans
from jobs.recovery.resolve import ReplicaPair, resolve
from jobs.recovery.settings import SHIPPED_PLANS
from lab.site_fleet import site_fleet


def _site_world() -> tuple[list[ReplicaPair], object]:
    fleet = site_fleet()
    inventory = parse_inventory({"hosts": [{"name": h.name, "fqdn": h.fqdn, "site": h.site,
                                            "url": "http://127.0.0.1:5985/wsman"} for h in fleet.hosts.values()]})
    pairs = [ReplicaPair(vm.name, h.name, fleet.host(vm.replication.replica_server).name, "Replicating",
                         "Critical" if i % 7 == 0 else "Normal", 300 + i, seen_on=h.name, seen_at=1000.0)
             for h in fleet.hosts.values() for i, vm in enumerate(h.vms) if vm.replication.mode == "Primary"]
    return pairs, inventory


def _within_limits(view: common.View) -> str:
    blocks = view.block_dicts()  # slack_sdk validates every block here
    assert len(blocks) <= common.MAX_BLOCKS
    text = "".join(json.dumps(b) for b in blocks)
    shown = "\n".join(b["text"]["text"] if "text" in b else b["elements"][0]["text"] for b in blocks)
    assert len(shown) <= common.MESSAGE_CHARS, len(shown)
    assert all(len(b["text"]["text"]) <= common.SECTION_CHARS for b in blocks if "text" in b)
    assert text
    return shown


def test_a_site_plan_of_120_vms_fits_one_message_or_says_it_is_cut():
    pairs, inventory = _site_world()
    plans = load_plans(SHIPPED_PLANS)
    resolved = resolve(Scope(ScopeKind.SITE, "site-a"), plans, pairs, inventory)
    assert len(resolved.vms()) == 120
    health = views.Health({(p.vm.lower(), p.primary_host): p for p in pairs}, 42.0)
    shown = _within_limits(views.plan_view(plans[0], resolved, health))
    listed = shown.count("• `")
    assert listed == 120 or "the plan is longer than one message" in shown
    assert "Replication health as of the last sweep (42 s ago)." in shown
    assert "*1. site-a-core/infrastructure* — waits for heartbeat · time limit 10 min · on failure: stop" in shown


def test_the_plan_list_names_the_unhealthy_vms_and_counts_the_rest():
    pairs, inventory = _site_world()
    plans = load_plans(SHIPPED_PLANS)
    listing = [(p, resolve(Scope(ScopeKind.PLAN, p.name), plans, pairs, inventory)) for p in plans]
    health = views.Health({(p.vm.lower(), p.primary_host): p for p in pairs}, None)
    shown = _within_limits(views.plans_view(listing, health))
    # per host: dc, fw x2 (infrastructure), sql x4, file x2 + web x6 + mail (applications); dc-xx01 and dc-xx15
    # are Critical (every 7th VM of a host; the other two are app servers, in no plan)
    assert "85 VMs in 3 groups: infrastructure (20) → databases (20) → applications (45)" in shown
    assert "health: 75 Normal, 10 Critical" in shown
    assert "• `dc-0101` hv-a01 → hv-b01 · Replicating · Critical · lag 5 min :warning:" in shown
    assert "…and 5 more: `/hyperv plan site-a-core` shows every VM" in shown
    assert "No sweep has run yet" in shown


def test_durations_read_as_plan_files_write_them():
    assert [views.span(s) for s in (45, 600, 5400, 7200, 30 * 86400, 90)] == [
        "45 s", "10 min", "90 min", "2 h", "30 d", "90 s"]


def test_a_plan_says_when_it_was_last_drilled_or_that_it_never_was() -> None:
    plan = RecoveryPlan("core", (PlanGroup("dcs", ("dc*",)),), drill=DrillSchedule(every_s=30 * 86400))
    assert "never drilled" in views.drill_line(plan)
    line = views.drill_line(plan, {"at": 1796558400.0})
    assert line.startswith("drill every") and "last successful drill 2026-12-06 12:00 UTC" in line


def test_plan_views_explain_the_cryptic_states_they_show():
    pairs, inventory = _site_world()
    pairs[0] = ReplicaPair(pairs[0].vm, pairs[0].primary_host, pairs[0].replica_host, "WaitingForStartResynchronize",
                           "Critical", 900, seen_on=pairs[0].seen_on, seen_at=1000.0)
    plans = load_plans(SHIPPED_PLANS)
    health = views.Health({(p.vm.lower(), p.primary_host): p for p in pairs}, 42.0)
    meaning = "WaitingForStartResynchronize: the primary needs a resynchronization"
    listing = [(p, resolve(Scope(ScopeKind.PLAN, p.name), plans, pairs, inventory)) for p in plans]
    shown = [_within_limits(views.plans_view(listing, health))]
    shown += [_within_limits(views.plan_view(p, r, health)) for p, r in listing if pairs[0].vm in
              {m.vm for m in r.vms()}]
    assert len(shown) == 2 and all(meaning in s and "Replicating:" not in s for s in shown)
