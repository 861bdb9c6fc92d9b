"""The preview of a site failover against the lab over PSRP: every replicated VM of the dark site, the data each
would lose (from the lab's own replication times), refusals, batching per host, and the recommendation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jobs.hyperv.commands import command, pipeline
from jobs.hyperv.fleet import Fleet
from jobs.hyperv.hosts import load_inventory
from jobs.recovery.model import Member, PlanGroup, ResolvedGroup, ResolvedPlan, Scope, ScopeKind
from jobs.recovery.preview import binding, preview_plan
from jobs.recovery.preview_tasks import ScopeError, changed_vms, resolve_scope
from lab.clock import ManualClock
from lab.fleet import Lab
from lab.fleet_file import default_fleet

T0 = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
SITE_A = ("hv-a1", "hv-a2")


@pytest.fixture
def world(make_lab: Callable[..., Lab], tmp_path: Path) -> Iterator[tuple[Lab, Fleet, ManualClock]]:
    model = default_fleet(now=T0)
    clock = ManualClock(T0)
    model.clock = clock
    lab = make_lab(fleet=model)
    with Fleet(load_inventory(lab.write_inventory(tmp_path / "inventory.yml"))) as fleet:
        yield lab, fleet, clock


def _replicated_from(lab: Lab, hosts: tuple[str, ...]) -> dict[str, Any]:
    """The lab's own truth: each VM whose primary is on ``hosts``, with its replica-side relationship."""
    out = {}
    for name in hosts:
        host = lab.fleet.hosts[name]
        for vm in host.vms:
            if vm.replication is not None and vm.replication.mode == "Primary":
                partner = lab.fleet.partner(host, vm)
                assert partner is not None
                out[vm.name] = partner
    return out


def test_site_power_loss_preview_lists_every_vm_with_its_data_loss(world: tuple[Lab, Fleet, ManualClock]) -> None:
    lab, fleet, clock = world
    expected = _replicated_from(lab, SITE_A)
    for host in SITE_A:
        lab.control(host, "power_loss", {})
    clock.set(T0 + timedelta(minutes=7))
    now = clock.now
    plan = resolve_scope(fleet, Scope(ScopeKind.SITE, "site-a"))
    assert {m.vm for m in plan.vms()} == set(expected)
    before = len(lab.command_log())
    data = preview_plan(fleet, plan, "unplanned", now=now)
    rows = {r["vm"]: r for g in data["groups"] for r in g["vms"]}
    assert set(rows) == set(expected) and data["totals"]["vms"] == len(expected)
    for vm, (replica_host, replica_vm) in expected.items():
        row = rows[vm]
        assert row["replica"] == replica_host.name and not row["primary_reachable"]
        assert row["refused"] == [], (vm, row["refused"])
        points = [cp.creation_time for cp in replica_vm.checkpoints if cp.type in ("Replica", "AppConsistentReplica")]
        used = max(points) if points else replica_vm.replication.last_replication_time
        assert row["loss_s"] == round((now - used).total_seconds()), vm  # the lab's timeline, not a guess
    assert data["totals"]["ready"] == len(expected) and data["totals"]["hosts_not_answering"] == list(SITE_A)
    assert data["recommendation"]["kind"] == "unplanned"
    assert "hv-a1" in data["recommendation"]["reason"] and "do not answer" in data["recommendation"]["reason"]
    # batched: two snapshot reads per replica host whatever its number of VMs, never one per VM
    snaps = [e for e in lab.command_log()[before:] if e.cmdlet == "Get-VMSnapshot"]
    for host in {h.name for h, _ in expected.values()}:
        assert len([e for e in snaps if e.host == host]) == 2
    planned = preview_plan(fleet, plan, "planned", now=now)  # asked for planned while the site is dark
    assert planned["totals"]["ready"] == 0 and planned["recommendation"]["kind"] == "unplanned"
    assert all(any("does not answer" in r for r in row["refused"]) for g in planned["groups"] for row in g["vms"])


def test_refusals_already_failed_over_and_not_replicated(world: tuple[Lab, Fleet, ManualClock]) -> None:
    lab, fleet, _ = world
    plan = resolve_scope(fleet, Scope(ScopeKind.HOST, "hv-a1"))
    target = plan.vms()[0]
    fleet.run(target.replica_host, pipeline(command("Start-VMFailover", VMName=[target.vm])))
    lonely = Member("app01", "hv-a1", "")  # in a plan by name, but not replicated
    extra = ResolvedGroup("extra", PlanGroup("extra", ("app01",)), (lonely,))
    data = preview_plan(fleet, ResolvedPlan(plan.scope, "", (*plan.groups, extra)), "planned")
    rows = {r["vm"]: r for g in data["groups"] for r in g["vms"]}
    assert rows[target.vm]["refused"][0].startswith(f"{target.vm} has already failed over to {target.replica_host}")
    assert rows["app01"]["refused"] == ["app01 is not replicated, so it has no replica to fail over to"]
    assert data["totals"]["refused"] >= 2 and [g["name"] for g in data["groups"]][-1] == "extra"
    mail = rows.get("mail02")
    if mail is not None:  # hv-a2's VM; only when the scope holds it
        assert any("extends" in n for n in mail["notes"])


def test_binding_moves_when_a_vm_fails_over(world: tuple[Lab, Fleet, ManualClock]) -> None:
    lab, fleet, _ = world
    plan = resolve_scope(fleet, Scope(ScopeKind.SITE, "site-a"))
    first = binding(preview_plan(fleet, plan, "unplanned"))
    assert binding(preview_plan(fleet, plan, "unplanned")) == first  # nothing moved: the same binding
    target = plan.vms()[3]
    fleet.run(target.replica_host, pipeline(command("Start-VMFailover", VMName=[target.vm])))
    assert changed_vms(first, binding(preview_plan(fleet, plan, "unplanned"))) == [target.vm]


def test_unknown_site_and_host_are_clear(world: tuple[Lab, Fleet, ManualClock]) -> None:
    _, fleet, _ = world
    with pytest.raises(ScopeError, match="no site is called `site-z`; sites in the inventory: site-a, site-b"):
        resolve_scope(fleet, Scope(ScopeKind.SITE, "site-z"))
    with pytest.raises(ScopeError, match="no host is called `hv-zz`; hosts in the inventory: hv-a1"):
        resolve_scope(fleet, Scope(ScopeKind.HOST, "hv-zz"))


def test_a_vm_failed_over_but_never_started_is_offered_its_start_in_an_unplanned_preview(
        world: tuple[Lab, Fleet, ManualClock]) -> None:
    """What a resumed run finds when its worker died between Start-VMFailover and Start-VM."""
    lab, fleet, _ = world
    plan = resolve_scope(fleet, Scope(ScopeKind.HOST, "hv-a1"))
    target = plan.vms()[0]
    fleet.run(target.replica_host, pipeline(command("Start-VMFailover", VMName=[target.vm])))
    rows = {r["vm"]: r for g in preview_plan(fleet, plan, "unplanned")["groups"] for r in g["vms"]}
    assert rows[target.vm]["refused"] == [] and rows[target.vm]["steps"] == 1
    assert rows[target.vm]["signature"][0][1].startswith("Start-VM ")
    assert any("never started" in note for note in rows[target.vm]["notes"])
