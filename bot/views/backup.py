"""Block Kit for backups and exports: confirm cards, in-place progress messages, the on-call alert.

Destructive requests (backup-window, checkpoint, export) are answered with a card whose Run button carries
Slack's native confirm dialog; the click is re-authorized (operator) by `bot.listeners.backup`. Run is one-use by
its pending request (deleted when run); the jobs' buttons (Cancel export, Retry, Resynchronize) carry one-use
tokens.
"""

from __future__ import annotations

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ConfirmObject, MarkdownTextObject, SectionBlock

from bot.views.common import View
from bot.views.tokens import MESSAGE_LIFETIME, seal

ACTION_RUN = "hvbot_bk_run"
ACTION_DISMISS = "hvbot_bk_dismiss"
# Buttons the jobs ask for by plain name (jobs.ports.Reporter.update actions): action_id = "hvbot_" + name.
ACTION_EXPORT_CANCEL = "hvbot_export_cancel"
ACTION_ALERT_RETRY = "hvbot_bk_retry"
ACTION_ALERT_RESYNC = "hvbot_bk_resync"
SECTION = 2900

_CONFIRMS = {
    ACTION_EXPORT_CANCEL: ("Cancel the export?", "The export pipeline is stopped; the partial copy stays on the host."),
    ACTION_ALERT_RETRY: ("Resume replication now?", "Runs Resume-VMReplication and waits for a new replication."),
    ACTION_ALERT_RESYNC: ("Resynchronize?", "Runs Resume-VMReplication -Resynchronize: compares the whole VM "
                                            "with the replica, which loads storage and network for a while."),
}


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _md(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text[:SECTION]))


def _button(action_id: str, label: str, value: str, danger: bool = False) -> ButtonElement:
    confirm = None
    if action_id in _CONFIRMS:
        title, text = _CONFIRMS[action_id]
        confirm = ConfirmObject(title=title, text=text, confirm="Yes", deny="No", style="danger" if danger else None)
    if action_id in _CONFIRMS:  # each of these changes something: one use (bot.views.tokens)
        value = seal(value, MESSAGE_LIFETIME)
    return ButtonElement(text=label, action_id=action_id, value=value[:2000], style="danger" if danger else None,
                         confirm=confirm)


def confirm_card(description: str, request_id: str) -> View:
    """The answer to a destructive command: what will happen, Run (with Slack's confirm dialog) and Cancel."""
    confirm = ConfirmObject(title="Run it now?", text=description[:300], confirm="Run", deny="Back", style="danger")
    blocks: list[Block] = [
        _md(f":warning: {_esc(description)}"),
        ActionsBlock(elements=[
            ButtonElement(text="Run", action_id=ACTION_RUN, value=request_id, style="danger", confirm=confirm),
            ButtonElement(text="Cancel", action_id=ACTION_DISMISS, value=request_id),
        ]),
    ]
    return View(description, blocks)


def progress(text: str, actions: list[dict[str, str]] | None = None) -> View:
    """One in-place status message; `actions` are the jobs' plain buttons ({"action", "label", "value"})."""
    blocks: list[Block] = [_md(_esc(text))]
    if actions:
        blocks.append(ActionsBlock(elements=[
            _button(f"hvbot_{a['action']}", a["label"], a["value"], danger=a.get("style") == "danger")
            for a in actions]))
    return View(text[:3000], blocks)


def resume_alert(vm: str, text: str) -> View:
    """The on-call alert when a backup window's resume keeps failing: Retry and Resynchronize (operator)."""
    return View(f":rotating_light: {text}"[:3000], [
        _md(f":rotating_light: {_esc(text)}"),
        ActionsBlock(elements=[
            _button(ACTION_ALERT_RETRY, "Retry resume", vm, danger=False),
            _button(ACTION_ALERT_RESYNC, "Resynchronize", vm, danger=True),
        ]),
    ])
