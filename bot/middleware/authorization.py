"""The one gate in front of every listener: who is asking, in which channel, and may they.

Slash commands and buttons that carry a command (teaming Run, a failover's next action) are parsed by the
`/hyperv` grammar and authorized with the command's role, exactly as typed text is. Other buttons declare what
they need (`Needs`), and their policy validates the value with the grammar's own checks (a `CommandError` refuses
the click). A button that changes something must carry an unspent one-use token (`bot.views.tokens`); the gate
spends it after the role check, so a refused click does not use up the operator's button. A refused request is
answered (the ack for a command, an ephemeral reply for a click) and never reaches its listener; the listener
finds the checked `Requester`, the button's value without its token (`value`) and any parsed `Command` in Bolt's
context.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from slack_bolt import Ack, BoltContext, BoltResponse, Respond

from bot.delivery.home import DirectReply
from bot.grammar import VERBS, VIEWER, Command, CommandError, parse
from bot.metrics import count_command
from bot.roles import Authorizer
from bot.views import common as views
from bot.views.tokens import MAX_LIFETIME, Sealed, unseal
from jobs.keys import BUTTON_USED_KEY

Record = Callable[..., None]  # Runtime.record(user, channel, command, outcome, detail="", job_id="")
Middleware = Callable[..., BoltResponse | None]

ALREADY_USED = ("This button was already used, so nothing ran again. To do it again, run the command again (or use "
                "the buttons of the latest message).")
NOT_OFFERED = "This button was not offered by hvbot, or it was altered; nothing was run. Run the command again."
EXPIRED = "This button has expired; nothing was run. Run the command again (or use the latest message's buttons)."
NO_REDIS = "hvbot cannot reach its database right now; nothing was run. Try again in a minute."
HOME = "app_home"  # the "channel" of a click on the App Home tab, which has none (audit, allowed-channel check)


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
    if isinstance(container, dict) and container.get("type") == "view" and not channel:
        return Requester(str(user.get("id", "")) if isinstance(user, dict) else "", HOME)
    return Requester(
        str(user.get("id", "")) if isinstance(user, dict) else "",
        str((channel.get("id", "") if isinstance(channel, dict) else "")
            or (container.get("channel_id", "") if isinstance(container, dict) else "")),
    )


def action_value(action: dict[str, Any]) -> str:
    """A button's value, or the value of the option picked in an overflow menu."""
    if "value" in action:
        return str(action.get("value") or "")
    option = action.get("selected_option")
    return str(option.get("value", "")) if isinstance(option, dict) else ""


@dataclass(frozen=True)
class Needs:
    """What a button needs: a role (channel included), the words the refusal and the audit use, whether a
    refusal is audited (clicks that would change something are), whether the value must carry an unspent
    one-use token (the click changes something), and channels allowed for it besides the allowed list."""

    role: str
    what: str
    audit: bool = False
    once: bool = False
    also_in: tuple[str, ...] = ()
    home: bool = False  # also offered on the App Home tab: allowed there, answered by direct message


# Static, or from the clicked action (its "value" already without the token); may raise CommandError.
Policy = Needs | Callable[[dict[str, Any]], Needs]


class Gate:
    """Builds the Bolt listener middleware of one process (its Authorizer, audit and Redis for spent tokens)."""

    def __init__(self, authz: Authorizer, record: Record, connection: redis.Redis) -> None:
        self.authz = authz
        self.record = record
        self.redis = connection

    def click(self, policy: Policy) -> Middleware:
        """Listener middleware for a button: value, role and channel are checked at click time, then its token
        is spent when the button changes something."""

        def authorize_click(ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond,
                            context: BoltContext, next: Callable[[], None]) -> BoltResponse | None:
            who = requester(body)
            if who.channel == HOME and getattr(respond, "response_url", None) is None:  # Home clicks carry none
                respond = context["respond"] = DirectReply(context.client, who.user)
            sealed, clicked = _unsealed(action or {})
            try:
                needs = policy(clicked) if callable(policy) else policy
            except CommandError as exc:
                self.record(who.user, who.channel, f"button {clicked.get('action_id', '')}", "invalid", exc.message)
                return _refuse_click(ack, respond, exc.message)
            also_in = needs.also_in + ((HOME,) if needs.home else ())
            decision = self.authz.check(who.user, who.channel, needs.role, needs.what, also_in)
            refusal = decision.reason if not decision.allowed else self._spend(sealed, who) if needs.once else None
            if refusal is not None:
                if needs.audit or needs.once:
                    self.record(who.user, who.channel, needs.what, "refused", refusal)
                return _refuse_click(ack, respond, refusal)
            context["requester"], context["value"] = who, clicked["value"]
            next()
            return None

        return authorize_click

    def command(self, text_of: Callable[[dict[str, Any], dict[str, Any]], str], once: bool = False) -> Middleware:
        """Listener middleware for `/hyperv` and for buttons whose value is a command: the channel is checked, the
        text goes through the grammar, then the command's role is checked (and a button's token spent, `once`);
        the parsed command is put in the context."""

        def authorize_command(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext,
                              next: Callable[[], None], action: dict[str, Any] | None = None) -> BoltResponse | None:
            who = requester(body)
            slash = action is None
            sealed, clicked = _unsealed(action or {})
            text = text_of(body, clicked)
            if not self.authz.channel_allowed(who.channel):  # before the grammar: not even help or usage there
                decision = self.authz.check(who.user, who.channel, VIEWER, "")
                self.record(who.user, who.channel, text[:100], "refused", decision.reason)
                _count(slash, verb_label(text), "refused")
                return _refuse(ack, respond, decision.reason, slash)
            try:
                command = parse(text)
            except CommandError as exc:
                self.record(who.user, who.channel, text, "invalid", exc.message)
                _count(slash, verb_label(text), "invalid")
                return _refuse(ack, respond, exc.text() if slash else exc.message, slash)
            refusal = self._refusal(command, who)
            if refusal is None and once and not slash:
                refusal = self._spend(sealed, who)
            if refusal is not None:
                self.record(who.user, who.channel, command.canonical(), "refused", refusal)
                _count(slash, command.verb, "refused")
                return _refuse(ack, respond, refusal, slash)
            context["requester"], context["command"], context["value"] = who, command, clicked.get("value", "")
            next()
            return None

        return authorize_command

    def _refusal(self, command: Command, who: Requester) -> str | None:
        if command.verb == "help":
            return None  # help shows only the grammar: anyone in an allowed channel (checked before) may read it
        decision = self.authz.check(who.user, who.channel, command.role, command.verb)
        return None if decision.allowed else decision.reason

    def _spend(self, sealed: Sealed | None, who: Requester) -> str | None:
        """Spend the button's one-use token; the refusal when it is missing, expired or already spent."""
        now = time.time()
        if sealed is None or sealed.expires_at > now + MAX_LIFETIME.total_seconds():
            return NOT_OFFERED
        if sealed.expires_at <= now:
            return EXPIRED
        try:
            spent = self.redis.set(BUTTON_USED_KEY.format(sealed.token), who.user, nx=True,
                                   ex=max(1, int(sealed.expires_at - now) + 1))
        except redis.RedisError:
            return NO_REDIS  # fail closed: without the record of spent tokens a click could run twice
        return None if spent else ALREADY_USED


def verb_label(text: str) -> str:
    """The metrics label of a command's verb: a verb of the grammar, else `unknown` (labels stay bounded)."""
    first = text.split(maxsplit=1)[0].lower() if text.strip() else ""
    return first if first in VERBS else "unknown"


def _count(slash: bool, verb: str, outcome: str) -> None:
    if slash:  # typed /hyperv commands only: a refused button is a click, not a command
        count_command(verb, outcome)


def _unsealed(action: dict[str, Any]) -> tuple[Sealed | None, dict[str, Any]]:
    """The action's token (if any) and the action as listeners and policies see it: its value without the token."""
    raw = action_value(action)
    sealed = unseal(raw)
    return sealed, {**action, "value": sealed.value if sealed else raw}


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
