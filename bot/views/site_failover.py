"""Block Kit of a site, host or plan failover before it runs: the preview message (groups in order, totals, the
recommendation, Request), its thread of per-VM details, and the one approval card.

Sized for hundreds of VMs: the message holds one line per group (never per VM) in at most a few sections, well
under 50 blocks and ~11k characters; the per-VM lines go to the thread in chunks of one section each.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.views.common import View, approval_buttons
from bot.views.legend import legend_text
from bot.views.tokens import CARD_LIFETIME, seal
from jobs import units

ACTION_REQUEST = "hvbot_rc_request"
ACTION_APPROVE = "hvbot_rc_approve"
ACTION_REJECT = "hvbot_rc_reject"
SECTION = 2900  # Slack allows 3,000 characters per section text
GROUP_SECTIONS = 3  # group lines in at most this many sections; the rest are counted, and all are in the thread
MAX_LINE = 1000  # a refusal says what would work instead: it must reach the reader whole


def section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text))


def _esc(text: Any) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _read_at(value: Any) -> str:
    return units.timestamp(units.parse_time(value)) or str(value or "")


def duration(seconds: float | None) -> str:
    return "unknown" if seconds is None else units.duration(seconds)


def scope_text(data: dict[str, Any]) -> str:
    scope = data.get("scope") or {}
    return f"{scope.get('kind', '?')} {scope.get('value', '?')}"


def title(data: dict[str, Any]) -> str:
    return f"{data['kind']} failover of {scope_text(data)}"


def summary(data: dict[str, Any]) -> str:
    t = data["totals"]
    hosts = ", ".join(f"`{_esc(h)}`" for h in t["replica_hosts"]) or "none"
    lines = [f"*{_esc(title(data))}*: {units.plural(t['vms'], 'VM')} in {units.plural(t['groups'], 'group')} "
             f"— {t['ready']} ready, {t['refused']} refused",
             f"Replica hosts: {hosts}"]
    if data["kind"] != "planned":
        lines.append(f"Data that would be lost: up to {duration(t['max_loss_s'])} of changes (per VM in the thread)")
    if t["hosts_not_answering"]:
        lines.append("Not answering: " + ", ".join(f"`{_esc(h)}`" for h in t["hosts_not_answering"]))
    rec = data.get("recommendation")
    if rec and rec["kind"] != data["kind"]:
        lines.append(f":warning: *Recommended: {rec['kind']}* — {_esc(rec['reason'])}")
    elif rec:
        lines.append(f"Recommended: {rec['kind']} — {_esc(rec['reason'])}")
    return "\n".join(lines)[:SECTION]


def group_line(number: int, group: dict[str, Any], kind: str) -> str:
    rows = group["vms"]
    ready = [r for r in rows if not r["refused"]]
    losses = [r["loss_s"] for r in ready if r["loss_s"] is not None]
    loss = f", data loss up to {duration(max(losses))}" if losses and kind != "planned" else ""
    refused = f", {len(rows) - len(ready)} refused" if len(ready) < len(rows) else ""
    return f"{number}. *{_esc(group['name'])}* — {units.plural(len(rows), 'VM')}, {len(ready)} ready{refused}{loss}"


def _chunks(lines: list[str], limit: int = SECTION) -> list[str]:
    chunks: list[str] = []
    current = ""
    for line in lines:
        line = line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"
        if current and len(current) + 1 + len(line) > limit:
            chunks.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    if current:
        chunks.append(current)
    return chunks


def _group_sections(data: dict[str, Any]) -> list[Block]:
    lines = [group_line(i, g, data["kind"]) for i, g in enumerate(data["groups"], 1)]
    chunks = _chunks(["*Groups, in order*", *lines])
    blocks: list[Block] = [section(c) for c in chunks[:GROUP_SECTIONS]]
    if len(chunks) > GROUP_SECTIONS:
        shown = sum(c.count("\n") + 1 for c in chunks[:GROUP_SECTIONS]) - 1
        blocks.append(section(f"… and {len(lines) - shown} more groups, all listed in the thread"))
    return blocks


def preview(data: dict[str, Any], preview_id: str) -> View:
    blocks: list[Block] = [section(summary(data)), *_group_sections(data)]
    if data["totals"]["ready"]:
        request = ButtonElement(text="Request", action_id=ACTION_REQUEST, value=seal(preview_id, CARD_LIFETIME),
                                style="primary")  # one-use: a double click asks for one approval
        blocks.append(ActionsBlock(elements=[request]))
    else:
        blocks.append(section("Nothing here can fail over now (every VM is refused; reasons in the thread)."))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(
        text=f"Per-VM details in the thread. Read at {_read_at(data.get('at'))}. One Request asks one approval "
             "for all.")]))
    return View(f"Preview: {title(data)} ({units.plural(data['totals']['vms'], 'VM')})", blocks)


def vm_line(row: dict[str, Any], kind: str) -> str:
    state = f"{row['state'] or '?'}/{row['health'] or '?'}" if row["replica_reachable"] else "replica not answering"
    head = f"`{_esc(row['vm'])}` → `{_esc(row['replica'] or 'no replica')}` ({_esc(state)})"
    if row["refused"]:
        return f"✗ {head}: refused — {_esc('; '.join(row['refused']))}"
    point = _esc(row["point"])
    if row["point_time"]:
        point += f" of {units.when_and_age(units.parse_time(row['point_time'])) or row['point_time']}"
    loss = "" if kind == "planned" else f", loses {duration(row['loss_s'])}"
    notes = f" ({_esc('; '.join(row['notes']))})" if row["notes"] and kind == "planned" else ""
    return f"✓ {head}: point {point}{loss}, {units.plural(row['steps'], 'step')}{notes}"


def thread_details(data: dict[str, Any]) -> list[str]:
    """The per-VM lines, group by group, in chunks of at most one section each."""
    lines: list[str] = []
    for i, group in enumerate(data["groups"], 1):
        lines.append(group_line(i, group, data["kind"]))
        lines += [vm_line(row, data["kind"]) for row in group["vms"]]
    for host, error in sorted((data.get("host_errors") or {}).items()):
        lines.append(f":warning: `{_esc(host)}` does not answer: {_esc(error)}")
    rows = [row for group in data["groups"] for row in group["vms"] if row["replica_reachable"]]
    if legend := legend_text(row["state"] for row in rows):
        lines.append(f"_{_esc(legend)}_")
    return _chunks(lines)


def error(data: dict[str, Any]) -> View:
    text = f"{data['kind']} failover of {scope_text(data)}: {data['error']}"
    return View(text, [section(_esc(text)[:SECTION])])


def approval_card(data: dict[str, Any], requester: str, button_value: str, expires: str) -> View:
    confirm = ConfirmObject(title="Approve and run now?",
                            text=f"{units.plural(data['totals']['ready'], 'VM')} fail"
                            f"{'s' if data['totals']['ready'] == 1 else ''} over, group by group, right away.",
                            confirm="Approve", deny="Back", style="danger")
    blocks: list[Block] = [
        section(f":rotating_light: <@{requester}> requests one approval for all of it:\n{summary(data)}"),
        *_group_sections(data),
        *approval_buttons(ACTION_APPROVE, ACTION_REJECT, button_value, confirm, expires,
                          note="Per-VM details in the preview's thread."),
    ]
    return View(f"Approval needed: {title(data)}", blocks)


def decided(data: dict[str, Any], text: str) -> View:
    """The approval card after a decision, a change or expiry: the summary stays, the buttons go."""
    body = summary(data) if data.get("totals") else _esc(title(data) if "kind" in data else "recovery")
    head = title(data) if "kind" in data else "recovery"
    return View(f"{head}: {text}", [section(body), section(_esc(text)[:SECTION])])
