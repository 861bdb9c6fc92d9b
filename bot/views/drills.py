"""Block Kit for failover drills: the approval card, progress, the report's summary, and drill notices."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.views.common import MAX_BLOCKS, SECTION_CHARS, View, approval_buttons
from jobs import units
from jobs.recovery import drill_report

ACTION_APPROVE = "hvbot_drill_approve"
ACTION_REJECT = "hvbot_drill_reject"
MAX_VM_LINES = 40  # the rest is in the attached report
WHAT = ("A drill runs a test failover of each VM on its replica host (Start-VMFailover -AsTest), starts the test "
        "VM, waits for its heartbeat, then removes it (Stop-VMFailover). Production and replication go on; test VMs "
        "connect only to their adapters' test switch, and a test switch that is a production switch refuses the "
        "drill.")


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _md(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text[:SECTION_CHARS]))


def approval_card(target: str, requester: str, button_value: str, expires: str) -> View:
    confirm = ConfirmObject(title="Approve the drill?", text="Test failovers start on the replica hosts right away.",
                            confirm="Approve", deny="Back")
    blocks: list[Block] = [
        _md(f":test_tube: <@{requester}> requests a failover drill of *{_esc(target)}*\n_{WHAT}_"),
        *approval_buttons(ACTION_APPROVE, ACTION_REJECT, button_value, confirm, expires, style="primary"),
    ]
    return View(f"Approval needed: failover drill of {target}", blocks)


def decided(target: str, text: str) -> View:
    return View(f"Drill of {target}: {text}", [_md(f":test_tube: Failover drill of *{_esc(target)}*: {_esc(text)}")])


def progress(text: str) -> View:
    return View(text, [_md(f":test_tube: {_esc(text)}")])


def report(data: dict[str, Any]) -> View:
    lines = drill_report.summary_lines(data)
    blocks: list[Block] = [_md(f":test_tube: *{_esc(lines[0])}*\n" + "\n".join(_esc(x) for x in lines[1:]))]
    rows = data["vms"]
    chunk: list[str] = []
    for row in rows[:MAX_VM_LINES]:
        line = _esc(drill_report.vm_line(row))[:500]
        if sum(len(x) + 1 for x in chunk) + len(line) > SECTION_CHARS - 10:
            blocks.append(_md("\n".join(chunk)))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(_md("\n".join(chunk)))
    if not rows and data["problems"]:
        blocks.append(_md(_esc("\n".join(data["problems"][:10]))))
    more = f" ({len(rows) - MAX_VM_LINES} more VMs in the file)" if len(rows) > MAX_VM_LINES else ""
    blocks.append(ContextBlock(elements=[MarkdownTextObject(
        text=f"drill {data['drill_id']} · {data['trigger']} · started {_started(data['started_at'])} · full report "
             f"attached{more}")]))
    return View(" — ".join(lines), blocks[:MAX_BLOCKS])


def notice(text: str, mention: str | None) -> View:
    lead = f"{mention} " if mention else ""
    return View(text, [_md(f"{lead}:test_tube: {_esc(text)}")])


def _started(value: object) -> str:
    return units.timestamp(units.parse_time(value)) or str(value)
