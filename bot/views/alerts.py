"""Block Kit for replica-health alerts (a `jobs.monitor.notifications.Notification` -> message), with slack_sdk.models.

One section per VM (host, state, health, last replication, lag) with a menu: Details, Resume, Resync,
Failover… (Resume/Resync change replication, so the menu asks for confirmation; the handlers check the
operator role). Ack / Snooze buttons act on the whole message. Values that change something carry one-use tokens. Rows beyond the notification's inline rows
travel as a CSV file (`csv_text`). Limits: 50 blocks, 3,000 characters per section (reference/slack.md §2).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    Option,
    OverflowMenuElement,
    SectionBlock,
)

from bot.views.common import View
from bot.views.legend import legend_text
from bot.views.tokens import MESSAGE_LIFETIME, seal
from jobs import units
from jobs.monitor.notifications import Notification, NotificationKind
from jobs.monitor.rules import AlertRow

ACTION_VM = "hvbot_alert_vm"  # overflow: "<verb>|<host>|<vm>", verb in details/resume/resync/failover
ACTION_ACK = "hvbot_alert_ack"  # value: the message key
ACTION_SNOOZE = "hvbot_alert_snooze"  # value: "<seconds>|<message key>"
ONE_USE = ("resume", "resync")  # menu choices that change something: sealed (bot.views.tokens), as Ack and Snooze
SNOOZE_CHOICES = ((3600, "Snooze 1 h"), (4 * 3600, "Snooze 4 h"))
SECTION_CHARS = 3000
CSV_COLUMNS = ("host", "site", "vm", "condition", "state", "health", "last_replication", "lag_s", "detail")


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def lag_text(lag_s: int | None) -> str:
    return "never" if lag_s is None else units.duration(lag_s)


def _when(iso: str | None) -> str:
    if not iso:
        return "never"
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def row_line(row: AlertRow) -> str:
    if not row.vm:
        return f"*host {_esc(row.host)}* · {_esc(row.detail or 'unreachable')}"
    return (f"*{_esc(row.vm)}* on {_esc(row.host)} · state {_esc(row.state or '?')} · health "
            f"{_esc(row.health or '?')} · last replication {_when(row.last_replication)} · lag "
            f"{lag_text(row.lag_s)}")


def _vm_menu(row: AlertRow) -> OverflowMenuElement:
    value = f"{row.host}|{row.vm}"
    return OverflowMenuElement(
        action_id=ACTION_VM,
        options=[Option(text=label, value=_sealed(f"{verb}|{value}") if verb in ONE_USE else f"{verb}|{value}")
                 for verb, label in (("details", "Details"), ("resume", "Resume"),
                                     ("resync", "Resync"), ("failover", "Failover…"))],
        confirm=ConfirmObject(
            title="Act on this VM?", confirm="Continue", deny="Cancel",
            text=f"Resume/Resync change replication of {_esc(row.vm)}; Failover… shows a preview first.",
        ),
    )


def _row_block(row: AlertRow) -> SectionBlock:
    text = MarkdownTextObject(text=row_line(row)[:SECTION_CHARS])
    return SectionBlock(text=text, accessory=_vm_menu(row)) if row.vm else SectionBlock(text=text)


def _summary(note: Notification) -> str:
    hosts = units.plural(note.host_count, 'host')  # a host-down alert names no VMs: not "0 VMs on 1 host"
    scope = f"{units.plural(note.vm_count, 'VM')} on {hosts}" if note.vm_count else hosts
    parts = [scope, f"severity *{note.severity}*"]
    if note.muted_count:
        parts.append(f"{note.muted_count} more muted (silenced, inhibited or suppressed)")
    if note.attachment_rows:
        parts.append(f"showing {len(note.rows)} of {len(note.attachment_rows)}; the full list is in the attached CSV")
    lead = f"{note.mention} " if note.mention else ""
    return lead + " · ".join(parts)


def _sealed(value: str) -> str:
    return seal(value, MESSAGE_LIFETIME)


def _actions(key: str) -> ActionsBlock:
    buttons = [ButtonElement(text="Ack", action_id=ACTION_ACK, value=_sealed(key))]
    buttons += [ButtonElement(text=label, action_id=f"{ACTION_SNOOZE}_{secs}", value=_sealed(f"{secs}|{key}"))
                for secs, label in SNOOZE_CHOICES]
    return ActionsBlock(elements=buttons)


def _resolved_line(rows: list[AlertRow]) -> str:
    names = ", ".join(_esc(r.vm or f"host {r.host}") for r in rows)
    return f"Resolved since the last update: {names}"[:SECTION_CHARS]


def alert(note: Notification) -> View:
    """The group's message (post, update or repeat)."""
    icon = ":red_circle:" if note.severity == "critical" else ":warning:"
    text = f"{icon} {note.title}"
    blocks: list[Block] = [HeaderBlock(text=text[:150]), SectionBlock(text=MarkdownTextObject(text=_summary(note)))]
    blocks += [_row_block(r) for r in note.rows]
    if note.resolved_rows:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=_resolved_line(note.resolved_rows))]))
    if legend := legend_text(r.state for r in note.rows):
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=_esc(legend)[:SECTION_CHARS])]))
    blocks.append(_actions(note.group_key))
    mention = f"{note.mention} " if note.mention else ""
    return View(f"{mention}{text}", blocks)


def resolved_message(note: Notification) -> View:
    """The group's message once everything cleared (replaces the alert in place; no buttons)."""
    text = f":white_check_mark: Resolved: {note.title}"
    return View(text, [HeaderBlock(text=text[:150]), ContextBlock(elements=[
        MarkdownTextObject(text="Every alert of this group cleared; details in the thread.")])])


def resolve_reply(note: Notification) -> View:
    """The thread reply announcing the resolve, naming the VMs (the rest in the CSV when cut)."""
    rows = note.resolved_rows or note.rows
    lines = "\n".join(f"• {row_line(r)}" for r in rows)
    more = " (full list attached)" if note.attachment_rows else ""
    text = f":white_check_mark: Resolved: {note.title}{more}"
    return View(text, [SectionBlock(text=MarkdownTextObject(text=f"{text}\n{lines}"[:SECTION_CHARS]))])


def csv_text(rows: list[AlertRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        d = r.to_dict()
        writer.writerow(["" if d[c] is None else d[c] for c in CSV_COLUMNS])
    return out.getvalue()


def is_resolve(note: Notification) -> bool:
    return note.kind == NotificationKind.RESOLVE
