"""The one gate in front of every listener: who is asking, in which channel, and may they.

Slash commands and buttons that carry a command (teaming Run, a failover's next action) are parsed by the
`/hyperv` grammar and authorized with the command's role, exactly as typed text is. Other buttons declare what
they need (`Needs`). A refused request is answered (the ack for a command, an ephemeral reply for a click) and
never reaches its listener; the listener finds the checked `Requester` (and `Command`) in Bolt's context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, BoltContext, BoltResponse, Respond

from bot.grammar import Command, CommandError, parse
from bot.roles import Authorizer
from bot.views import common as views

Record = Callable[..., None]  # Runtime.record(user, channel, command, outcome, detail="", job_id="")
Middleware = Callable[..., BoltResponse | None]


@dataclass(frozen=True)
class Requester:
    user: str
    channel: str


def requester(body: dict[str, Any]) -> Requester:
    """Slash commands carry `user_id`/`channel_id`; clicks carry `user.id` and `channel.id` (or the container's)."""
    if "user_id" in body:
        return Requester(str(body.get("user_id", "")), str(body.get("channel_id", "")))
    user = body.get("user")
    channel = body.get("channel")
    container = body.get("container")
    return Requester(
        str(user.get("id", "")) if isinstance(user, dict) else "",
        str((channel.get("id", "") if isinstance(channel, dict) else "")
            or (container.get("channel_id", "") if isinstance(container, dict) else "")),
    )


@dataclass(frozen=True)
class Needs:
    """What a button needs: a role (channel included), the words the refusal and the audit use, and whether a
    refusal is audited (clicks that would change something are)."""

    role: str
    what: str
    audit: bool = False


Policy = Needs | Callable[[dict[str, Any]], Needs]  # static, or from the clicked action's payload


class Gate:
    """Builds the Bolt listener middleware of one process (its Authorizer and audit)."""

    def __init__(self, authz: Authorizer, record: Record) -> None:
        self.authz = authz
        self.record = record

    def click(self, policy: Policy) -> Middleware:
        """Listener middleware for a button: role and channel are checked at click time."""

        def authorize_click(ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond,
                            context: BoltContext, next: Callable[[], None]) -> BoltResponse | None:
            who = requester(body)
            needs = policy(action or {}) if callable(policy) else policy
            decision = self.authz.check(who.user, who.channel, needs.role, needs.what)
            if not decision.allowed:
                if needs.audit:
                    self.record(who.user, who.channel, needs.what, "refused", decision.reason)
                return _refuse_click(ack, respond, decision.reason)
            context["requester"] = who
            next()
            return None

        return authorize_click

    def command(self, text_of: Callable[[dict[str, Any], dict[str, Any]], str]) -> Middleware:
        """Listener middleware for `/hyperv` and for buttons whose value is a command: the text goes through the
        grammar, then the command's role and the channel are checked; the parsed command is put in the context."""

        def authorize_command(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext,
                              next: Callable[[], None], action: dict[str, Any] | None = None) -> BoltResponse | None:
            who = requester(body)
            slash = action is None
            text = text_of(body, action or {})
            try:
                command = parse(text)
            except CommandError as exc:
                self.record(who.user, who.channel, text, "invalid", exc.message)
                return _refuse(ack, respond, exc.text() if slash else exc.message, slash)
            refusal = self._refusal(command, who)
            if refusal is not None:
                self.record(who.user, who.channel, command.canonical(), "refused", refusal)
                return _refuse(ack, respond, refusal, slash)
            context["requester"], context["command"] = who, command
            next()
            return None

        return authorize_command

    def _refusal(self, command: Command, who: Requester) -> str | None:
        if command.verb == "help":
            return None  # help shows only the grammar, to anyone who can reach the bot
        decision = self.authz.check(who.user, who.channel, command.role, command.verb)
        return None if decision.allowed else decision.reason


def _refuse(ack: Ack, respond: Respond, text: str, slash: bool) -> BoltResponse:
    if slash:
        view = views.notice(text)
        return ack(text=view.text, blocks=view.blocks)
    return _refuse_click(ack, respond, text)


def _refuse_click(ack: Ack, respond: Respond, text: str) -> BoltResponse:
    response = ack()
    respond(text=text, response_type="ephemeral", replace_original=False)
    return response


def slash_text(body: dict[str, Any], action: dict[str, Any]) -> str:
    return str(body.get("text", ""))


def button_text(body: dict[str, Any], action: dict[str, Any]) -> str:
    return str(action.get("value", ""))
