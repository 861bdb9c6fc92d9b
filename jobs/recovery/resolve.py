"""A failover scope (a site, a host or a plan) resolved against the plans and the fleet's replicated VMs.

``resolve`` is pure: it takes the plans, the inventory (hosts and their sites) and the replicated VMs as
``ReplicaPair``s, and returns a ``ResolvedPlan`` whose groups follow plan order. For a site or host every VM whose
primary runs there is concerned, and the VMs no plan names form the last group, "not in any plan".

The pairs come from the last replica-health sweep (``pairs_from_sweep``), the records `/hyperv replication`
answers from, for two reasons: a site that went dark cannot be asked (its hosts do not answer, and their sweep
entries hold only the error), while the replica hosts' records still name each VM's primary server; and reading
them costs nothing, so a 200-VM preview starts at once. The preview reads each VM's live facts afterwards.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from jobs.hyperv.hosts import Inventory
from jobs.monitor.sweep import load_last
from jobs.recovery.model import Member, PlanGroup, RecoveryPlan, ResolvedGroup, ResolvedPlan, Scope, ScopeKind
from jobs.recovery.plans import PlanError, find_plan

NOT_IN_ANY_PLAN = "not in any plan"


class ScopeError(ValueError):
    """The scope names a site, host or plan that does not exist (the message lists the ones that do)."""


@dataclass(frozen=True)
class ReplicaPair:
    """One replicated VM: its primary and replica host (inventory names) and its health as last seen."""

    vm: str
    primary_host: str | None
    replica_host: str
    state: str = ""
    health: str = ""
    lag_s: int | None = None
    extended_to: str | None = None  # the replica host extends replication to this host
    seen_on: str = ""  # the host whose record this is (the primary's when it answered)
    seen_at: float | None = None  # that host's last sweep (Unix time)

    def member(self) -> Member:
        return Member(self.vm, self.primary_host, self.replica_host, self.extended_to)


# ---- the pairs, from the last sweep --------------------------------------------------------------------------


def host_name(inventory: Inventory, name: str) -> str:
    """The inventory name of a host given by name or FQDN (Hyper-V's Primary/ReplicaServerName are FQDNs)."""
    try:
        return inventory.host(name).name
    except KeyError:
        return name.split(".")[0].lower()


def pairs_from_sweep(entries: Iterable[Mapping[str, Any]], inventory: Inventory) -> list[ReplicaPair]:
    """Replicated VMs from last-sweep entries (``jobs.monitor.sweep.load_last``), one pair per (VM, primary host).

    A Primary record wins over the Replica record of the same VM (the primary's view of its own replication); a
    Replica record alone stands for a VM whose primary host did not answer. ExtendedReplica records are no pair
    of their own: they mark the pair their replica host serves (``extended_to``). Test replicas are left out.
    """
    primaries: dict[tuple[str, str | None], ReplicaPair] = {}
    replicas: dict[tuple[str, str | None], ReplicaPair] = {}
    extended: dict[tuple[str, str], str] = {}
    for e in entries:
        host = host_name(inventory, str(e["host"]))
        for row in e.get("vms") or []:
            partner = host_name(inventory, row["partner"]) if row.get("partner") else None
            facts = dict(state=row.get("state", ""), health=row.get("health", ""), lag_s=row.get("lag_s"),
                         seen_on=host, seen_at=e.get("at"))
            if row["mode"] == "Primary" and partner:
                primaries[(row["vm"].lower(), host)] = ReplicaPair(row["vm"], host, partner, **facts)
            elif row["mode"] == "Replica":
                replicas[(row["vm"].lower(), partner)] = ReplicaPair(row["vm"], partner, host, **facts)
            elif row["mode"] == "ExtendedReplica" and partner:
                extended[(row["vm"].lower(), partner)] = host
    merged = {**replicas, **primaries}
    out = []
    for key, pair in sorted(merged.items(), key=lambda kv: (kv[1].primary_host or "", kv[0][0])):
        further = extended.get((key[0], pair.replica_host))
        out.append(ReplicaPair(**{**pair.__dict__, "extended_to": further}) if further else pair)
    return out


def fleet_pairs(client: redis.Redis, inventory: Inventory) -> list[ReplicaPair]:
    """The replicated VMs as the last sweep of every host saw them."""
    return pairs_from_sweep(load_last(client), inventory)


# ---- resolving a scope ---------------------------------------------------------------------------------------


def _site_of(inventory: Inventory) -> dict[str, str]:
    return {h.name: h.site or "" for h in inventory.hosts}


def _matches(group: PlanGroup, pair: ReplicaPair, inventory: Inventory, sites: Mapping[str, str]) -> int | None:
    """Index of the first member (name or pattern) of `group` that names `pair`, or None."""
    if group.site is not None and sites.get(pair.primary_host or "", "").lower() != group.site.lower():
        return None
    if group.host is not None and pair.primary_host != host_name(inventory, group.host):
        return None
    return next((i for i, m in enumerate(group.members) if fnmatch.fnmatchcase(pair.vm.lower(), m.lower())), None)


def _concerned(scope: Scope, plans: Sequence[RecoveryPlan], pairs: Sequence[ReplicaPair],
               inventory: Inventory) -> tuple[list[ReplicaPair], list[RecoveryPlan]]:
    sites = _site_of(inventory)
    if scope.kind is ScopeKind.SITE:
        known = sorted({s for s in sites.values() if s})
        site = next((s for s in known if s.lower() == scope.value.lower()), None)
        if site is None:
            raise ScopeError(f"no site is called `{scope.value[:64]}`; sites in the inventory: "
                             f"{', '.join(known) or 'none (add site: to the inventory hosts)'}")
        return [p for p in pairs if sites.get(p.primary_host or "") == site], list(plans)
    if scope.kind is ScopeKind.HOST:
        try:
            host = inventory.host(scope.value).name
        except KeyError:
            raise ScopeError(f"no host is called `{scope.value[:64]}`; hosts in the inventory: "
                             f"{', '.join(inventory.names)}") from None
        return [p for p in pairs if p.primary_host == host], list(plans)
    try:
        plan = find_plan(plans, scope.value)
    except PlanError as exc:
        raise ScopeError(str(exc)) from None
    return [p for p in pairs if any(_matches(g, p, inventory, sites) is not None for g in plan.groups)], [plan]


def _warn_unmatched(plan: RecoveryPlan, pairs: Sequence[ReplicaPair], inventory: Inventory) -> list[str]:
    """Members that name no replicated VM anywhere in the fleet, and groups narrowed to an unknown site or host."""
    sites = _site_of(inventory)
    out = []
    for g in plan.groups:
        where = f"plan `{plan.name}`, group `{g.name}`"
        if g.site is not None and g.site.lower() not in {s.lower() for s in sites.values()}:
            out.append(f"{where}: site `{g.site}` is not in the inventory")
        if g.host is not None and host_name(inventory, g.host) not in sites:
            out.append(f"{where}: host `{g.host}` is not in the inventory")
        for m in g.members:
            single = PlanGroup(g.name, (m,), g.site, g.host)
            if not any(_matches(single, p, inventory, sites) is not None for p in pairs):
                out.append(f"{where}: `{m}` matches no replicated VM")
    return out


def resolve(scope: Scope, plans: Sequence[RecoveryPlan], pairs: Sequence[ReplicaPair],
            inventory: Inventory) -> ResolvedPlan:
    """The VMs `scope` concerns, in plan order; ScopeError when the site, host or plan does not exist.

    A site or host scope walks every plan (file order, then group order) and drops groups that hold none of its
    VMs; the group names then carry the plan's ("core/infrastructure"). A plan scope keeps all of the plan's
    groups, even empty ones. A VM two groups match stays in the first, with a warning.
    """
    concerned, candidates = _concerned(scope, plans, pairs, inventory)
    sites = _site_of(inventory)
    placed: dict[tuple[str, str | None], str] = {}
    groups: list[ResolvedGroup] = []
    warnings: list[str] = []
    for plan in candidates:
        if pairs:  # with no sweep record at all, "matches nothing" would only mean "not swept yet"
            warnings += _warn_unmatched(plan, pairs, inventory)
        for g in plan.groups:
            hits = []
            for p in concerned:
                index = _matches(g, p, inventory, sites)
                if index is None:
                    continue
                key = (p.vm.lower(), p.primary_host)
                if key in placed:
                    warnings.append(f"plan `{plan.name}`, group `{g.name}`: `{p.vm}` is already in {placed[key]}; "
                                    f"it stays there")
                    continue
                placed[key] = f"group `{g.name}` of plan `{plan.name}`"
                hits.append((index, p.vm.lower(), p.primary_host or "", p))
            if hits or scope.kind is ScopeKind.PLAN:
                name = g.name if scope.kind is ScopeKind.PLAN else f"{plan.name}/{g.name}"
                groups.append(ResolvedGroup(name, g, tuple(h[-1].member() for h in sorted(hits, key=lambda h: h[:3]))))
    rest = sorted((p for p in concerned if (p.vm.lower(), p.primary_host) not in placed),
                  key=lambda p: (p.primary_host or "", p.vm.lower()))
    if rest and scope.kind is not ScopeKind.PLAN:
        settings = PlanGroup(NOT_IN_ANY_PLAN, tuple(p.vm for p in rest))
        groups.append(ResolvedGroup(NOT_IN_ANY_PLAN, settings, tuple(p.member() for p in rest)))
    plan_name = candidates[0].name if scope.kind is ScopeKind.PLAN else ""
    return ResolvedPlan(scope, plan_name, tuple(groups), tuple(dict.fromkeys(warnings)))
