"""`/hyperv teaming VM on|off [--host H]` (operator): a confirm card with the warning, then the job on a click.

The warning is the one that matters (hyperv.md §1.11): with AllowTeaming on, the VM's adapter is
disconnected when the host's physical NIC fails, which only helps when the guest runs its own NIC team.
The click's value is parsed and authorized by the gate like typed text (Slack sends it back); it carries a
one-use token, so a double click or a replayed click sets the adapter once.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ConfirmObject, MarkdownTextObject, SectionBlock

from bot.grammar import Command
from bot.listeners import lookups
from bot.listeners.verbs import Verbs
from bot.middleware.authorization import Gate, Requester, button_text
from bot.runtime import Runtime
from bot.views import common as views
from bot.views.tokens import CARD_LIFETIME, seal
from jobs.ports import ReplyTo
from jobs.queue import enqueue, new_job_id
from jobs.teaming import run_set_teaming

ACTION_RUN = "hvbot_teaming_run"
ACTION_DISMISS = "hvbot_teaming_dismiss"
WARNING = ("With AllowTeaming *on*, the VM's adapter is disconnected when the host's physical NIC fails; that only "
           "helps when the guest runs its own NIC team (two adapters on different external virtual switches). "
           "Without a team in the guest, turning it on buys nothing.")


def is_change(command: Command) -> bool:
    return command.verb == "teaming" and len(command.args) == 2


def _text(vm: str, state: str, host: str | None) -> str:
    return f"teaming {vm} {state.lower()}" + (f" --host {host}" if host else "")


def card(vm: str, state: str, host: str | None) -> views.View:
    where = f" on `{host}`" if host else ""
    confirm = ConfirmObject(title=f"AllowTeaming {state}?", text=f"Run Set-VMNetworkAdapter -VMName {vm} "
                            f"-AllowTeaming {state}{where} now?", confirm=f"Set {state}", deny="Back", style="danger")
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=f"Set *AllowTeaming {state}* on the network adapters of "
                                                  f"*{vm}*{where}: `Set-VMNetworkAdapter -VMName {vm} "
                                                  f"-AllowTeaming {state}`, then read back with "
                                                  f"`Get-VMNetworkAdapter`.")),
        SectionBlock(text=MarkdownTextObject(text=f":warning: {WARNING}")),
        ActionsBlock(elements=[
            ButtonElement(text=f"Set {state}", action_id=ACTION_RUN, value=seal(_text(vm, state, host), CARD_LIFETIME),
                          style="danger",
                          confirm=confirm),
            ButtonElement(text="Cancel", action_id=ACTION_DISMISS, value="dismiss"),
        ]),
    ]
    return views.View(f"Set AllowTeaming {state} on {vm}? {WARNING}".replace("*", ""), blocks)


def _state(command: Command) -> str:
    return "On" if command.args[1].lower() == "on" else "Off"


def handle(runtime: Runtime, command: Command, who: Requester, body: dict[str, Any]) -> views.View:
    """`teaming VM on|off`: the confirm card (the gate checked the operator role; nothing runs before the click).
    `teaming [VM]` is a lookup."""
    if not is_change(command):
        return lookups.lookup(runtime, command, who, body)
    runtime.record(who.user, who.channel, command.canonical(), "previewed", "confirm card shown")
    return card(command.args[0], _state(command), command.host)


def on_run(runtime: Runtime, command: Command, who: Requester, body: dict[str, Any], respond: Respond) -> None:
    """The Run click: its value was parsed and authorized again by the gate, as typed text is (roles may have
    changed since the card was shown, or someone else clicked)."""
    if not is_change(command):
        respond(text="This button is not a teaming change; run the command again.", response_type="ephemeral",
                replace_original=False)
        return
    user, channel = who.user, who.channel
    reply = ReplyTo(channel=channel, user=user, command=command.canonical(),
                    response_url=str(body.get("response_url", "")), here=False)
    job_id = new_job_id("tm")
    enqueue(runtime.queue, run_set_teaming, {
        "vm": command.args[0], "state": _state(command), "host": command.host, "reply": reply.to_dict(),
        "heartbeat_seconds": runtime.settings.abandoned_check_seconds}, job_id=job_id,
        timeout=runtime.settings.job_timeout_seconds, description=f"/hyperv {command.canonical()} by {user}",
        meta={"user": user, "channel": channel, "command": command.canonical()})  # no Retry: it mutates
    runtime.record(user, channel, command.canonical(), "accepted", "confirmed", job_id)
    view = views.working(command.canonical(), job_id)
    respond(text=view.text, blocks=[b.to_dict() for b in view.blocks], response_type="ephemeral",
            replace_original=True)


def register(app: App, runtime: Runtime, gate: Gate) -> Verbs:
    def ack_only(ack: Ack) -> None:
        ack()

    def run(body: dict[str, Any], context: BoltContext, respond: Respond) -> None:
        on_run(runtime, context["command"], context["requester"], body, respond)

    def dismiss(respond: Respond) -> None:
        respond(delete_original=True)

    app.action(ACTION_RUN, middleware=[gate.command(button_text, once=True)])(ack=ack_only, lazy=[run])
    app.action(ACTION_DISMISS)(ack=ack_only, lazy=[dismiss])
    return {"teaming": handle}
