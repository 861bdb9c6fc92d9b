"""Block Kit for a recovery run (site/host/plan failover): one live card with the table of VMs, then the summary
with the safe next actions, or after a worker died, every VM's state and a Resume button.

Next-action buttons carry `/hyperv` command text (``hvbot_recovery_command``): the click goes through the grammar
and the gate like typed text and opens that operation's own preview and approval. Resume carries the run id.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ContextBlock, MarkdownTextObject, SectionBlock

from bot.views.common import MAX_BLOCKS, MESSAGE_CHARS, View
from jobs import units

ACTION_COMMAND = "hvbot_recovery_command"  # value: /hyperv command text (follow-ups of the whole plan)
ACTION_RESUME = "hvbot_recovery_resume"  # value: the run id; opens a preview and approval for the VMs not done
SECTION = 2900
NAME_WIDTH = 24
MARKS = {"waiting": "·", "running": "…", "heartbeat": "♥", "done": "✓", "failed": "✗", "skipped": "–",
         "interrupted": "!"}
FOLLOW_LABELS = {"complete": "Complete all", "cancel": "Cancel all", "reverse": "Reverse all"}
STATUS = {"running": "running", "finished": "finished", "abandoned": "STOPPED: the worker died",
          "failed": "STOPPED: internal error"}


def _esc(text: Any) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _md(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text[:SECTION]))


def scope_text(run: dict[str, Any]) -> str:
    scope = run.get("scope") or {}
    return f"{scope.get('kind', '?')} {scope.get('value', '?')}"


def follow_up_command(run: dict[str, Any], kind: str) -> str:
    """The `/hyperv` text of a follow-up for the run's whole scope (the grammar of site/host/plan failover)."""
    scope = run.get("scope") or {}
    if scope.get("kind") == "plan":
        return f"plan {scope['value']} failover {kind}"
    return f"failover --{scope.get('kind')} {scope.get('value')} {kind}"


def vm_row(vm: dict[str, Any]) -> str:
    state = vm["state"]
    name = f"{MARKS.get(state, '?')} {vm['vm'][:NAME_WIDTH]:<{NAME_WIDTH}} {vm['replica'][:14]:<14}"
    if state == "done":
        return f"{name} {vm['seconds']} s"
    if state == "failed":
        return f"{name} {vm['error'][:160]}"
    if state in ("running", "heartbeat"):
        return f"{name} {vm.get('step') or 'starting'}"
    if state == "interrupted":
        return f"{name} interrupted at {vm.get('step') or 'its first step'}; now: {vm.get('state_now', '')[:140]}"
    if state == "skipped":
        return f"{name} {vm.get('error', '')[:120]}"
    return f"{name} waiting"


def counts(vms: list[dict[str, Any]]) -> str:
    order = ("done", "failed", "running", "heartbeat", "waiting", "skipped", "interrupted")
    n = {s: sum(1 for v in vms if v["state"] == s) for s in order}
    return "  ".join(f"{MARKS[s]} {s} {n[s]}" for s in order if n[s])


def _group_lines(run: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(group heading, rows) in plan order; a long group keeps every row not done and folds the done ones."""
    summary = {g["name"]: g for g in (run.get("summary") or {}).get("groups", [])}
    out = []
    for group in run["plan"]["groups"]:
        vms = [v for v in run["vms"] if v["group"] == group["name"]]
        head = f"*{_esc(group['name'])}* ({units.plural(len(vms), 'VM')})"
        if group["name"] in summary:
            head += f": {summary[group['name']]['seconds']} s"
        out.append((head, [vm_row(v) for v in vms]))
    return out


def _fold(groups: list[tuple[str, list[str]]], budget: int) -> list[tuple[str, list[str]]]:
    """Fit the table in the message: first fold the ✓ rows of each group into one line, then cut with a count."""
    size = sum(len(h) + sum(len(r) + 1 for r in rows) for h, rows in groups)
    if size <= budget:
        return groups
    folded = []
    for head, rows in groups:
        done = [r for r in rows if r.startswith(MARKS["done"])]
        rest = [r for r in rows if not r.startswith(MARKS["done"])]
        folded.append((head, ([f"{MARKS['done']} {units.plural(len(done), 'VM')} done"] if done else []) + rest))
    kept, used = [], 0
    for head, rows in folded:
        room = budget - used - len(head)
        shown: list[str] = []
        for r in rows:
            if room - len(r) - 1 < 0:
                shown.append(f"… and {len(rows) - len(shown)} more rows")
                break
            shown.append(r)
            room -= len(r) + 1
        kept.append((head, shown))
        used = budget - room
    return kept


def _table_blocks(run: dict[str, Any], budget: int, max_blocks: int) -> list[Block]:
    blocks: list[Block] = []
    for head, rows in _fold(_group_lines(run), budget):
        chunk: list[str] = []
        for row in rows:
            if sum(len(r) + 1 for r in chunk) + len(row) > SECTION - len(head) - 10:
                blocks.append(_md(head + "\n```" + _esc("\n".join(chunk)) + "```"))
                chunk, head = [], "(continued)"
            chunk.append(row)
        blocks.append(_md(head + ("\n```" + _esc("\n".join(chunk)) + "```" if chunk else "")))
    if len(blocks) > max_blocks:
        blocks = blocks[:max_blocks - 1] + [_md(f"… {len(blocks) - max_blocks + 1} more groups not shown")]
    return blocks


def card(run: dict[str, Any]) -> View:
    """The live card: title, counts, the table; once over, the summary and the buttons."""
    status = run.get("status", "running")
    kind = str(run.get("kind", "?")).capitalize()
    title = f"{kind} failover of {scope_text(run)}: {STATUS.get(status, status)}"
    head: list[Block] = [_md(f"*{_esc(title)}*\n{counts(run['vms'])}")]
    tail = _tail(run)
    budget = MESSAGE_CHARS - sum(len(str(b.to_dict())) for b in head + tail) - 500
    blocks = head + _table_blocks(run, budget, MAX_BLOCKS - len(head) - len(tail)) + tail
    return View(f"{title} ({counts(run['vms'])})", blocks)


def _tail(run: dict[str, Any]) -> list[Block]:
    status = run.get("status", "running")
    blocks: list[Block] = []
    summary = run.get("summary")
    if summary:
        stop = f"; stopped after group *{_esc(summary['stopped_after'])}*" if summary.get("stopped_after") else ""
        per_group = ", ".join(f"{_esc(g['name'])} {g['seconds']} s" for g in summary["groups"])
        blocks.append(_md(f"Recovery time: *{summary['seconds']} s* overall ({per_group}). ✓ {summary['done']}, "
                          f"✗ {summary['failed']}, not started {summary['skipped']}{stop}."))
        buttons = [ButtonElement(text=FOLLOW_LABELS.get(k, k.capitalize()) + _once(run, k),
                                 action_id=f"{ACTION_COMMAND}_{k}", value=follow_up_command(run, k))
                   for k in summary.get("next_actions", [])]
        if buttons:
            blocks.append(ContextBlock(elements=[MarkdownTextObject(
                text="Each action opens its own preview and approval for every VM of this plan.")]))
            blocks.append(ActionsBlock(elements=buttons))
    if status in ("abandoned", "failed"):
        blocks.append(_md(f":x: {_esc(run.get('error', ''))}"))
    left = [v for v in run["vms"] if v["state"] != "done"]
    if status != "running" and left:
        blocks.append(ActionsBlock(elements=[ButtonElement(
            text=f"Resume plan ({units.plural(len(left), 'VM')} not done)", action_id=ACTION_RESUME,
            value=run["run_id"])]))
    return blocks


def _once(run: dict[str, Any], kind: str) -> str:
    if kind != "reverse":
        return ""
    scope = run.get("scope") or {}
    return " (once the site is back)" if scope.get("kind") == "site" else " (once the primaries are back)"
