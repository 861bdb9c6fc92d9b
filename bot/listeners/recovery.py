"""Chat side of recovery plans: `/hyperv plans` and `/hyperv plan NAME`, answered at once.

The plans are read from their files on every request (an edit shows up without a restart, and a broken file is
reported with its file and line); the VMs and their health come from the last replica-health sweep in Redis, as
`/hyperv replication` answers, so the views work while a site is dark.
"""

from __future__ import annotations

import time
from typing import Any

from slack_bolt import App

from bot.grammar import Command
from bot.listeners.verbs import Verbs
from bot.middleware.authorization import Gate, Requester
from bot.runtime import Runtime
from bot.views import common as views
from bot.views import recovery as recovery_views
from jobs.hyperv.hosts import Inventory, InventoryError, load_inventory
from jobs.recovery.model import Scope, ScopeKind
from jobs.recovery.plans import PlanError, find_plan, load_plans
from jobs.recovery.resolve import ReplicaPair, fleet_pairs, resolve

NO_INVENTORY = ("The recovery plan views need the inventory (its hosts' sites): set HVBOT_INVENTORY to the "
                "inventory file.")


def _inventory(runtime: Runtime) -> Inventory:
    if runtime.settings.inventory is None:
        raise InventoryError(NO_INVENTORY)
    return load_inventory(runtime.settings.inventory)


def _health(pairs: list[ReplicaPair], now: float) -> recovery_views.Health:
    seen = [p.seen_at for p in pairs if p.seen_at is not None]
    return recovery_views.Health({(p.vm.lower(), p.primary_host): p for p in pairs},
                                 max(0.0, now - min(seen)) if seen else None)


def _problem(runtime: Runtime, command: Command, who: Requester, text: str) -> views.View:
    runtime.record(who.user, who.channel, command.canonical(), "refused", text[:200])
    return views.notice(text)


def plans(runtime: Runtime, command: Command, who: Requester, body: dict[str, Any]) -> views.View:
    try:
        loaded = load_plans()
        inventory = _inventory(runtime)
    except (PlanError, InventoryError) as exc:
        return _problem(runtime, command, who, f"Recovery plans cannot be shown:\n{exc}")
    pairs = fleet_pairs(runtime.redis, inventory)
    resolved = [(p, resolve(Scope(ScopeKind.PLAN, p.name), loaded, pairs, inventory)) for p in loaded]
    runtime.record(who.user, who.channel, command.canonical(), "done")
    return recovery_views.plans_view(resolved, _health(pairs, time.time()))


def plan(runtime: Runtime, command: Command, who: Requester, body: dict[str, Any]) -> views.View:
    try:
        loaded = load_plans()
        chosen = find_plan(loaded, command.args[0])
        inventory = _inventory(runtime)
    except (PlanError, InventoryError) as exc:
        return _problem(runtime, command, who, str(exc))
    pairs = fleet_pairs(runtime.redis, inventory)
    resolved = resolve(Scope(ScopeKind.PLAN, chosen.name), loaded, pairs, inventory)
    runtime.record(who.user, who.channel, command.canonical(), "done")
    return recovery_views.plan_view(chosen, resolved, _health(pairs, time.time()))


def register(app: App, runtime: Runtime, gate: Gate) -> Verbs:
    return {"plans": plans}  # `plan NAME` is routed by bot.listeners.site_failover (it also fails a plan over)
