"""Block Kit for failovers: the preview (to the requester), the approval card and its progress, outcomes."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    MarkdownTextObject,
    SectionBlock,
)

from bot.views.common import View, approval_buttons
from bot.views.legend import legend_text
from bot.views.tokens import CARD_LIFETIME, seal
from jobs import units

ACTION_REQUEST = "hvbot_fo_request"
ACTION_DISMISS = "hvbot_fo_dismiss"
ACTION_APPROVE = "hvbot_fo_approve"
ACTION_REJECT = "hvbot_fo_reject"
ACTION_NEXT = "hvbot_fo_next"  # a safe next action after a failure: opens that operation's own preview
NEXT_LABELS = {"cancel": "Cancel failover", "complete": "Complete failover", "reverse": "Reverse replication",
               "planned": "Planned failover", "unplanned": "Unplanned failover", "test": "Test failover"}
SECTION = 2900


def _md(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text[:SECTION]))


def _esc(text: Any) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def title(data: dict[str, Any]) -> str:
    point = f" to recovery point '{data['point']}'" if data.get("point") else ""
    what = "Reverse replication" if data["kind"] == "reverse" else f"{data['kind'].capitalize()} failover"
    return f"{what} of *{_esc(data['vm'])}*{_esc(point)}"


def sides_text(sides: list[dict[str, Any]]) -> str:
    lines = []
    for s in sides:
        if not s.get("reachable", True):
            lines.append(f"• `{s['host']}`: does not answer")
            continue
        if s.get("problem"):
            lines.append(f"• `{s['host']}`: {_esc(s['problem'])}")
            continue
        test = f", test VM {s['test_vm']}" if s.get("test_vm") else ""
        extended = f" · extends replication to {_esc(s['extended_to'])}" if s.get("extended_to") else ""
        last = units.when_and_age(units.parse_time(s.get("last_replication"))) or "never"
        lines.append(f"• `{s['host']}`: {s.get('mode')} · state {s.get('state')} · health {s.get('health')} · "
                     f"VM {s.get('vm_state')} · last replication {last}{test}{extended}")
    legend = legend_text(s.get("state") for s in sides if s.get("reachable", True) and not s.get("problem"))
    return "\n".join(lines + ([f"_{_esc(legend)}_"] if legend else []))


def steps_text(steps: list[dict[str, Any]]) -> str:
    return "\n".join(f"{s['number']}. on `{s['host']}`: {_esc(s['title'])}\n    `{_esc(s['command'])}`"
                     for s in steps)


def preview(data: dict[str, Any], preview_id: str) -> View:
    blocks: list[Block] = [_md(f"{title(data)}\n_{_esc(data['description'])}_")]
    blocks.append(_md("*Replication now*\n" + sides_text(data["sides"])))
    if data.get("recommendation"):
        rec = data["recommendation"]
        blocks.append(_md(f":bulb: *Recommended: {rec['kind']}.* {_esc(rec['reason'])}"))
    if data["refused"]:
        blocks.append(_md(":no_entry: *Not possible now:*\n" + "\n".join(f"• {_esc(r)}" for r in data["refused"])))
        return View(f"{data['kind']} failover of {data['vm']} is not possible now", blocks)
    blocks.append(_md("*Steps*\n" + steps_text(data["steps"])))
    if data.get("warnings"):
        blocks.append(_md(":warning: " + "\n:warning: ".join(_esc(w) for w in data["warnings"])))
    confirm = ConfirmObject(title="Request approval?", text=f"Ask an on-call approver to run this {data['kind']} "
                            f"operation on {data['vm']}.", confirm="Request", deny="Back", style="danger")
    blocks.append(ActionsBlock(elements=[
        ButtonElement(text="Request", action_id=ACTION_REQUEST, value=seal(preview_id, CARD_LIFETIME), style="danger",
                      confirm=confirm),
        ButtonElement(text="Cancel", action_id=ACTION_DISMISS, value=preview_id),
    ]))
    return View(f"Preview: {data['kind']} failover of {data['vm']}", blocks)


def approval_card(data: dict[str, Any], requester: str, button_value: str, expires: str) -> View:
    confirm = ConfirmObject(title="Approve and run now?", text="The steps below run on the hosts right away.",
                            confirm="Approve", deny="Back", style="danger")
    blocks: list[Block] = [
        _md(f":rotating_light: <@{requester}> requests: {title(data)}\n_{_esc(data['description'])}_"),
        _md("*Replication at request time*\n" + sides_text(data["sides"])),
        _md("*Steps*\n" + steps_text(data["steps"])),
        *approval_buttons(ACTION_APPROVE, ACTION_REJECT, button_value, confirm, expires, style="danger"),
    ]
    return View(f"Approval needed: {data['kind']} failover of {data['vm']}", blocks)


def progress(data: dict[str, Any], status: str, done: list[dict[str, Any]]) -> View:
    lines = [f"{'✓' if s['ok'] else '✗'} {s['number']}. {_esc(s['title'])} on `{s['host']}` ({s['seconds']} s)"
             for s in done]
    pending = [s for s in data.get("steps", []) if s["number"] > len(done)]
    lines += [f"… {s['number']}. {_esc(s['title'])} on `{s['host']}`" for s in pending]
    blocks: list[Block] = [_md(f"{title(data)}: *{_esc(status)}*"), _md("\n".join(lines) or "(no steps)")]
    return View(f"{data['kind']} failover of {data['vm']}: {status}", blocks)


def outcome_blocks(data: dict[str, Any], outcome: dict[str, Any], done: list[dict[str, Any]]) -> View:
    status = "done" if outcome["ok"] else "FAILED"
    view = progress(data, status, done)
    blocks = list(view.blocks)
    if not outcome["ok"]:
        blocks.append(_md(f":x: {_esc(outcome['error'])}"))
    if outcome.get("sides"):
        blocks.append(_md("*State now*\n" + sides_text(outcome["sides"])))
    if outcome.get("next_actions"):
        vm = outcome.get("vm") or data["vm"]
        cmds = ", ".join(f"`/hyperv reverse {vm}`" if a == "reverse" else f"`/hyperv failover {vm} {a}`"
                         for a in outcome["next_actions"])
        blocks.append(_md(f"Safe next actions (each previews first): {cmds}"))
        blocks.append(next_action_buttons(vm, outcome["next_actions"]))
    return View(f"{data['kind']} failover of {data['vm']}: {status}", blocks)


def next_action_buttons(vm: str, actions: list[str]) -> ActionsBlock:
    """One button per follow-up; a click only opens that operation's preview (which needs its own approval)."""
    return ActionsBlock(elements=[
        ButtonElement(text=NEXT_LABELS.get(a, a.capitalize()), action_id=f"{ACTION_NEXT}_{a}", value=f"{a}:{vm}")
        for a in actions[:5]])


def decided(data: dict[str, Any], text: str) -> View:
    return View(text, [_md(f"{title(data)}\n{_esc(text)}")])
