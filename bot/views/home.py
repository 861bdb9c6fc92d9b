"""The App Home tab: the fleet at a glance for one user, as a `HomeTabView` built with slack_sdk.models.

Slack allows 100 blocks in a Home tab and 3,000 characters per section (reference/slack.md §2); every list here is
cut to fit and says "…and N more". Approval buttons are the cards' own (`approval_buttons`, same action ids and
values), so a click from Home goes through the same gate and the same atomic decision; only approvers get them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View as SlackView

from bot.views import drills as drill_views
from bot.views import failover as failover_views
from bot.views import site_failover as recovery_views
from bot.views.common import SECTION_CHARS, approval_buttons
from jobs.job_listing import job_line

MAX_BLOCKS = 100  # a Home tab's limit (slack_sdk's View refuses more)
MAX_APPROVALS = 10  # three blocks each
MAX_WORST = 15
MAX_LINES = 25
HEALTH_ORDER = {"Critical": 0, "Warning": 1}  # then everything else, then Normal
# Approval kind -> the action ids of its card's Approve / Reject (the listeners of that card decide the click).
APPROVAL_ACTIONS = {
    "failover": (failover_views.ACTION_APPROVE, failover_views.ACTION_REJECT),
    "recovery": (recovery_views.ACTION_APPROVE, recovery_views.ACTION_REJECT),
    "drill": (drill_views.ACTION_APPROVE, drill_views.ACTION_REJECT),
}


@dataclass(frozen=True)
class PendingApproval:
    id: str
    kind: str
    what: str  # "planned failover of web01", "failover drill of plan web"
    requester: str
    expires_at: float
    button_value: str


@dataclass
class HomeData:
    """Everything one user's Home shows; gathered by bot.delivery.home, plain data here."""

    user: str
    role: str | None  # viewer / operator / approver, None: no role
    now: float
    sweeps: list[dict[str, Any]] = field(default_factory=list)  # jobs.monitor.sweep.load_last entries
    alerts: list[dict[str, Any]] = field(default_factory=list)  # firing alert rows (condition, host, vm, severity)
    approvals: list[PendingApproval] = field(default_factory=list)  # waiting for this user's decision
    requested: list[PendingApproval] = field(default_factory=list)  # this user's own requests, still pending
    jobs: list[dict[str, str]] = field(default_factory=list)  # this user's running and recent jobs (id, status, ...)
    drills: dict[str, dict[str, Any]] = field(default_factory=dict)  # plan -> its last successful drill


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _md(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=text)])


def ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{int(seconds)} s ago"
    if seconds < 7200:
        return f"{int(seconds // 60)} min ago"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} days ago"


def fit(lines: list[str], max_lines: int = MAX_LINES, chars: int = SECTION_CHARS - 100) -> str:
    """Lines joined within one section's limits; the rest counted as "…and N more"."""
    shown: list[str] = []
    used = 0
    for line in lines[:max_lines]:
        if used + len(line) + 1 > chars:
            break
        shown.append(line)
        used += len(line) + 1
    rest = len(lines) - len(shown)
    return "\n".join(shown + ([f"…and {rest} more"] if rest else []))


def _fleet(data: HomeData) -> list[Block]:
    if not data.sweeps:
        return [_md("No sweep has run yet: start `hvbot monitor`.")]
    answering = [e for e in data.sweeps if not e["error"]]
    oldest = min(e["at"] for e in data.sweeps)
    vms = [v for e in data.sweeps for v in e["vms"]]
    states = Counter(v["state"] or "unknown" for v in vms)
    health = Counter(v["health"] or "unknown" for v in vms)
    lines = [f"*Hosts answering:* {len(answering)} of {len(data.sweeps)}",
             "*Replicas by state:* " + (", ".join(f"{n} {_esc(s)}" for s, n in states.most_common()) or "none"),
             "*Replica health:* " + (", ".join(f"{n} {_esc(h)}" for h, n in health.most_common()) or "none")]
    down = [f":x: {_esc(e['error'][:200])}" for e in data.sweeps if e["error"]]
    blocks: list[Block] = [_md("\n".join(lines))]
    if down:
        blocks.append(_md(fit(down, 10)))
    worst = worst_rows(data.sweeps)
    if worst:
        rows = [f"`{_esc(v['vm'])}` on {_esc(host)} · {_esc(v['health'])} · {_esc(v['state'])} · lag "
                f"{'unknown' if v['lag_s'] is None else ago(v['lag_s']).removesuffix(' ago')}" for host, v in worst]
        blocks.append(_md("*Worst replicas*\n" + fit(rows, MAX_WORST)))
    blocks.append(_context(f"As of the last sweep, {ago(data.now - oldest)}."))
    return blocks


def worst_rows(sweeps: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """VM rows that are not Normal, worst health first, then the longest lag."""
    rows = [(e["host"], v) for e in sweeps for v in e["vms"] if v["health"] != "Normal"]
    return sorted(rows, key=lambda r: (HEALTH_ORDER.get(r[1]["health"], 2), -(r[1]["lag_s"] or 0), r[1]["vm"]))


def _alerts(data: HomeData) -> list[Block]:
    if not data.alerts:
        return [_md("No alert is firing.")]
    rows = sorted(data.alerts, key=lambda a: (a.get("severity") != "critical", a.get("host", ""), a.get("vm", "")))
    lines = [f"{':red_circle:' if a.get('severity') == 'critical' else ':large_orange_circle:'} "
             f"{_esc(str(a.get('condition', '')))} · `{_esc(str(a.get('vm') or '-'))}` on {_esc(str(a['host']))}"
             for a in rows]
    return [_md(fit(lines))]


def _approvals(data: HomeData) -> list[Block]:
    blocks: list[Block] = []
    may_decide = data.role == "approver"
    for a in data.approvals[:MAX_APPROVALS]:
        expires = datetime.fromtimestamp(a.expires_at, UTC).strftime("%H:%M UTC")
        blocks.append(_md(f"<@{a.requester}> requests: *{_esc(a.what)}*"))
        if may_decide and a.kind in APPROVAL_ACTIONS:
            approve, reject = APPROVAL_ACTIONS[a.kind]
            confirm = ConfirmObject(title="Approve and run now?", text=f"{_esc(a.what)} starts right away.",
                                    confirm="Approve", deny="Back", style="danger")
            blocks += approval_buttons(approve, reject, a.button_value, confirm, expires)
    if len(data.approvals) > MAX_APPROVALS:
        blocks.append(_md(f"…and {len(data.approvals) - MAX_APPROVALS} more; their cards are in the channels."))
    mine = [f"• {_esc(a.what)} · expires {datetime.fromtimestamp(a.expires_at, UTC):%H:%M} UTC"
            for a in data.requested]
    if mine:
        blocks.append(_md("*Your requests waiting for an approver*\n" + fit(mine, 10)))
    return blocks or [_md("Nothing waits for you.")]


def _jobs(data: HomeData) -> list[Block]:
    if not data.jobs:
        return [_md("You have no running or recent jobs.")]
    lines = [f"• `{_esc(j['id'])}` {_esc(job_line(j))}" for j in data.jobs]
    return [_md(fit(lines, 10))]


def _drills(data: HomeData) -> list[Block]:
    if not data.drills:
        return [_md("No plan has a successful drill yet.")]
    lines = [f"• *{_esc(plan)}*: {datetime.fromtimestamp(d['at'], UTC):%Y-%m-%d %H:%M} UTC "
             f"({ago(data.now - d['at'])})" for plan, d in sorted(data.drills.items())]
    return [_md(fit(lines, 15))]


def home_view(data: HomeData) -> SlackView:
    """The whole Home tab; `to_dict()` validates it (100 blocks, text lengths)."""
    sections = [("Fleet", _fleet(data)), ("Alerts firing", _alerts(data)),
                ("Approvals", _approvals(data)), ("Your jobs", _jobs(data)), ("Last drill per plan", _drills(data))]
    blocks: list[Block] = [_context(f"hvbot · your role: *{data.role or 'none'}* · updated "
                                    f"{datetime.fromtimestamp(data.now, UTC):%H:%M:%S} UTC")]
    for title, body in sections:
        blocks += [HeaderBlock(text=title), *body, DividerBlock()]
    if len(blocks) > MAX_BLOCKS:  # cannot happen with the caps above; keep the view valid if they change
        blocks = blocks[: MAX_BLOCKS - 1] + [_md("…the rest does not fit in the Home tab.")]
    return SlackView(type="home", blocks=blocks)
