"""The buttons of a finished recovery run's card: Complete / Cancel / Reverse all carry `/hyperv` command text for
the run's whole scope; the click passes the same gate as typed text (grammar, channel, role) and the command's
own listener answers it, which opens that operation's own preview and approval."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot.middleware.authorization import Gate
from bot.views import common as views
from bot.views import recovery_run as rv

Answer = Callable[[dict[str, Any], BoltContext], views.View]  # bot.app.answer bound to the app's verbs
FOLLOW_UPS = ("complete", "cancel", "reverse")


def button_text(body: dict[str, Any], action: dict[str, Any]) -> str:
    return str(action.get("value", ""))


def register_follow_ups(app: App, gate: Gate, answer: Answer) -> None:
    """Register after every feature's verbs: a button's command is answered by whichever listener owns its verb."""

    def ack_only(ack: Ack) -> None:
        ack()

    def follow_up(body: dict[str, Any], context: BoltContext, respond: Respond) -> None:
        view = answer(body, context)
        respond(text=view.text, blocks=view.block_dicts(), response_type="ephemeral", replace_original=False)

    for kind in FOLLOW_UPS:
        app.action(f"{rv.ACTION_COMMAND}_{kind}", middleware=[gate.command(button_text)])(ack=ack_only,
                                                                                          lazy=[follow_up])
