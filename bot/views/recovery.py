"""Block Kit for recovery plans: `/hyperv plans` (every plan, its VMs' replication health) and `/hyperv plan NAME`
(one plan's groups in boot order, each VM with its replica host, state and health, the group's settings).

Health comes from the last replica-health sweep, as `/hyperv replication` shows it; the views say how old it is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

from bot.views.common import MAX_BLOCKS, MESSAGE_CHARS, SECTION_CHARS, View
from bot.views.legend import legend_text
from jobs import units
from jobs.recovery.model import Member, PlanGroup, RecoveryPlan, ResolvedPlan
from jobs.recovery.resolve import ReplicaPair

MAX_PROBLEMS = 5  # VMs named per plan in the list view; the plan view names them all
HEALTHY = "Normal"
NOTES_CHARS = 1500  # the plan view's footnotes (sweep age, file, warnings)


@dataclass(frozen=True)
class Health:
    """What the views know about the fleet: each replicated VM's last sweep record, and that sweep's age."""

    pairs: Mapping[tuple[str, str | None], ReplicaPair]
    age_s: float | None  # seconds since the oldest record used; None: no sweep yet

    def of(self, member: Member) -> ReplicaPair | None:
        return self.pairs.get((member.vm.lower(), member.primary_host))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _md(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text[:SECTION_CHARS]))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=text[:SECTION_CHARS])])


def span(seconds: float) -> str:
    """30 s, 10 min, 2 h, 30 d: the largest unit that divides the length, as plan files write it."""
    s = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size and s % size == 0:
            return f"{s // size} {unit}"
    return f"{s} s"


def age_line(health: Health) -> str:
    if health.age_s is None:
        return ("No sweep has run yet, so health is unknown: start `hvbot monitor`, or use "
                "`/hyperv replication --fresh`.")
    age = f"{int(health.age_s)} s" if health.age_s < 120 else f"{int(health.age_s // 60)} min"
    return f"Replication health as of the last sweep ({age} ago)."


def settings_line(g: PlanGroup) -> str:
    parts = ["waits for heartbeat" if g.wait_heartbeat else "no heartbeat wait"]
    if g.delay_s:
        parts.append(f"then {span(g.delay_s)} delay")
    parts += [f"time limit {span(g.timeout_s)}", f"on failure: {g.on_failure.value}"]
    if g.site or g.host:
        parts.append(f"only primaries on {g.host or g.site}")
    return " · ".join(parts)


def drill_line(plan: RecoveryPlan, last: Mapping[str, Any] | None = None) -> str:
    """The schedule and the last successful drill: a plan never tried is a guess, so that is said plainly."""
    done = "never drilled" if not last else \
        f"last successful drill {datetime.fromtimestamp(float(last['at']), UTC):%Y-%m-%d %H:%M} UTC"
    if plan.drill is None:
        return f"no scheduled drill · {done}"
    at = f" at {plan.drill.at} UTC" if plan.drill.at else ""
    approval = ", without a second approval" if plan.drill.without_approval else ""
    return f"drill every {span(plan.drill.every_s)}{at}{approval} · {done}"


def _vm_line(m: Member, health: Health) -> str:
    pair = health.of(m)
    where = f"{m.primary_host or '?'} → {m.replica_host}"
    extended = f" (extended to {m.extended_to})" if m.extended_to else ""
    if pair is None:
        return f"`{_escape(m.vm)}` {where}{extended} · not in the last sweep"
    lag = f" · lag {units.duration(pair.lag_s)}" if pair.lag_s is not None else ""
    mark = "" if pair.health == HEALTHY else " :warning:"
    return f"`{_escape(m.vm)}` {where}{extended} · {pair.state} · {pair.health}{lag}{mark}"


def _health_counts(vms: Sequence[Member], health: Health) -> str:
    counts = Counter((p.health if (p := health.of(m)) else "unknown") for m in vms)
    return ", ".join(f"{n} {h}" for h, n in sorted(counts.items(), key=lambda kv: (kv[0] != HEALTHY, kv[0])))


def plans_view(plans: Sequence[tuple[RecoveryPlan, ResolvedPlan]], health: Health,
               last_drills: Mapping[str, Mapping[str, Any]] | None = None) -> View:
    """Every plan: groups, VMs, health counts and the VMs that are not healthy."""
    if not plans:
        return View("No recovery plans", [_md("No recovery plans are defined: add plan files to the directory "
                                               "HVBOT_RECOVERY_PLANS_DIR names (see deploy/recovery-plans/).")])
    blocks: list[Block] = [_md(f"*Recovery plans* ({len(plans)})")]
    for plan, resolved in plans[: MAX_BLOCKS - 3]:
        vms = resolved.vms()
        head = f"*{_escape(plan.name)}*" + (f" — {_escape(plan.description)}" if plan.description else "")
        groups = " → ".join(f"{_escape(g.name)} ({len(g.vms)})" for g in resolved.groups)
        last = (last_drills or {}).get(plan.name)
        lines = [head, f"{_vms_in_groups(len(vms), len(resolved.groups))}: {groups}", drill_line(plan, last)]
        if vms:
            lines.append(f"health: {_health_counts(vms, health)}")
        sick = _sick(vms, health)
        lines += [f"• {_vm_line(m, health)}" for m in sick[:MAX_PROBLEMS]]
        if len(sick) > MAX_PROBLEMS:
            lines.append(f"…and {len(sick) - MAX_PROBLEMS} more: `/hyperv plan {plan.name}` shows every VM")
        blocks.append(_md("\n".join(lines)))
    if len(plans) > MAX_BLOCKS - 3:
        blocks.append(_md(f"…and {len(plans) - (MAX_BLOCKS - 3)} more plans."))
    shown_sick = [m for plan, resolved in plans[: MAX_BLOCKS - 3] for m in _sick(resolved.vms(), health)[:MAX_PROBLEMS]]
    blocks.append(_context("\n".join(filter(None, [age_line(health), _legend(shown_sick, health)]))))
    return View(f"{len(plans)} recovery plans", blocks)


def _sick(vms: Sequence[Member], health: Health) -> list[Member]:
    return [m for m in vms if (p := health.of(m)) is None or p.health != HEALTHY]


def _legend(vms: Sequence[Member], health: Health) -> str:
    """What the cryptic replication states among ``vms`` mean (bot/views/legend.py); empty when none is."""
    return legend_text(p.state for m in vms if (p := health.of(m)) is not None)


def _group_blocks(index: int, name: str, settings: PlanGroup, vms: Sequence[Member], health: Health) -> list[Block]:
    head = f"*{index}. {_escape(name)}* — {settings_line(settings)}"
    lines = [f"• {_vm_line(m, health)}" for m in vms] or ["_no replicated VM matches this group_"]
    blocks: list[Block] = []
    chunk = head
    for line in lines:
        if len(chunk) + len(line) + 1 > SECTION_CHARS:
            blocks.append(_md(chunk))
            chunk = line
        else:
            chunk += "\n" + line
    blocks.append(_md(chunk))
    return blocks


def plan_view(plan: RecoveryPlan, resolved: ResolvedPlan, health: Health,
              last_drill: Mapping[str, Any] | None = None) -> View:
    """One plan: its groups in boot order, each VM's replica host, state and health, and the group's settings."""
    vms = resolved.vms()
    head = f"*Recovery plan {_escape(plan.name)}*" + (f" — {_escape(plan.description)}" if plan.description else "")
    summary = f"{_vms_in_groups(len(vms), len(resolved.groups))} · {drill_line(plan, last_drill)}"
    if vms:
        summary += f" · health: {_health_counts(vms, health)}"
    blocks: list[Block] = [_md(f"{head}\n{summary}")]
    body: list[Block] = []
    for i, g in enumerate(resolved.groups, start=1):
        body += _group_blocks(i, g.name, g.settings, g.vms, health)
    # Slack refuses more than 50 blocks or ~12k characters of text: a plan too long for one message says so.
    budget, shown = MESSAGE_CHARS - NOTES_CHARS - SECTION_CHARS // 3, 0
    for block in body[: MAX_BLOCKS - 3]:
        size = len(block.text.text) if isinstance(block, SectionBlock) and block.text else 0
        if budget - size < 0:
            break
        budget -= size
        blocks.append(block)
        shown += 1
    if shown < len(body):
        blocks.append(_md("…the plan is longer than one message; `/hyperv replication` lists every VM's health."))
    notes = [age_line(health), f"from {_escape(plan.source)}"] + [f":warning: {_escape(w)}" for w in resolved.warnings]
    if legend := _legend(vms, health):
        notes.append(_escape(legend))
    blocks.append(_context("\n".join(notes)[:NOTES_CHARS]))
    return View(f"Recovery plan {plan.name}: {_vms_in_groups(len(vms), len(resolved.groups))}", blocks)


def _vms_in_groups(vms: int, groups: int) -> str:
    return f"{units.plural(vms, 'VM')} in {units.plural(groups, 'group')}"
