"""The shape of a Slack request body, checked before Bolt or any listener sees it.

Bolt trusts the body: it indexes `actions[0]`, calls `"id" in body["user"]` and `len(body["authorizations"])`
while it builds a request's context, and a listener reads `body["user"]["id"]`. A payload of the wrong shape then
raises inside Bolt and becomes an HTTP 500 with a traceback. So every body is parsed here, without raising, and
matched against the request kinds hvbot handles (pydantic models, strict types); anything else is refused with
one sentence that says what is wrong. The HTTP front (bot/adapters/http_checks.py) and Socket Mode
(bot/adapters/socket_mode.py) both call `problem()` before they build a `BoltRequest`.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

MAX_DEPTH = 40  # Slack's payloads nest about ten deep (message.blocks[].elements[].elements[]); deeper is not Slack
MAX_ERRORS = 3  # a refusal names the first few problems, not a wall of them
UNION_TAGS = {"str", "Ref"}  # pydantic's names for the branches of `str | Ref` in an error's location
ID_UNION = 'should be an ID string or an object with an "id" string'

# Objects read as `body.get(name, {}).get(...)` (Bolt: event, view; our listeners: container) or measured with len()
# (Bolt: response_urls): present but null, each of them raises. Other objects may be null (Bolt notes that `team`
# is None in org-wide installs) and Bolt checks them for None before reading them.
NOT_NULL = ("event", "view", "container", "response_urls")
NonEmpty = Annotated[str, Field(min_length=1, max_length=255)]


class MalformedBody(ValueError):
    """A body that is not a Slack request hvbot handles; `str(exc)` is the one sentence the client gets."""


class _Model(BaseModel):
    # strict: Slack sends strings as strings; a number where an ID belongs is not Slack. extra: Slack adds fields.
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


class Ref(_Model):
    """`{"id": ...}` objects (user, team, channel, enterprise): Bolt takes `id` as the context's ID."""

    id: NonEmpty


class ViewState(_Model):
    values: dict[str, dict[str, dict[str, Any]]] = {}


class ViewRef(_Model):
    id: str | None = None
    type: str | None = None
    callback_id: str | None = None
    team_id: str | None = None
    app_installed_team_id: str | None = None
    private_metadata: str | None = None
    state: ViewState | None = None


class ResponseUrl(_Model):
    response_url: str


class Envelope(_Model):
    """Every field Bolt reads while it builds a request's context (slack_bolt.request.internals.build_context),
    typed so that none of its lookups can raise. Nested objects (event, message, ...) are read the same way."""

    type: str | None = None
    token: str | None = None
    enterprise: str | Ref | None = None
    enterprise_id: str | None = None
    team: str | Ref | None = None
    team_id: str | None = None
    user: str | Ref | None = None
    user_id: str | None = None
    channel: str | Ref | None = None
    channel_id: str | None = None
    is_enterprise_install: bool | str | None = None
    is_ext_shared_channel: bool | None = None
    authorizations: list[Envelope] | None = None
    event: Envelope | None = None
    message: Envelope | None = None
    previous_message: Envelope | None = None
    item: Envelope | None = None
    assistant_thread: Envelope | None = None
    view: ViewRef | None = None
    thread_ts: str | None = None
    function_execution_id: str | None = None
    function_data: dict[str, Any] | None = None
    bot_access_token: str | None = None
    response_url: str | None = None
    response_urls: list[ResponseUrl] | None = None

    @model_validator(mode="before")
    @classmethod
    def _objects_are_not_null(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = [key for key in NOT_NULL if key in data and data[key] is None]
            if nulls:
                raise ValueError(f"{', '.join(nulls)} is null: give an object, or leave the field out")
        return data


class SlashCommand(Envelope):
    command: NonEmpty
    text: str
    user_id: NonEmpty
    channel_id: NonEmpty
    response_url: str = ""
    trigger_id: str | None = None


class ActionOption(_Model):
    value: str = Field(max_length=2000)


class Action(_Model):
    action_id: NonEmpty
    block_id: str | None = None
    type: str | None = None
    value: str | None = Field(default=None, max_length=2000)  # slack_sdk's ButtonElement.value_max_length
    selected_option: ActionOption | None = None
    action_ts: str | None = None


class Container(_Model):
    type: str | None = None
    message_ts: str | None = None
    channel_id: str | None = None
    thread_ts: str | None = None
    is_ephemeral: bool | None = None


class Clicker(Ref):
    team_id: str | None = None
    username: str | None = None


class BlockActions(Envelope):
    type: Literal["block_actions"]
    user: Clicker
    # One click is one action; hvbot's buttons are on messages (the click has a channel) or on the App Home tab.
    actions: list[Action] = Field(min_length=1, max_length=1)
    channel: Ref | None = None
    container: Container | None = None
    trigger_id: str | None = None
    # Clicks on messages always carry one, and a listener answers through it (Bolt's `respond`): without it the
    # listener would fail after the ack instead of the click being refused here. Home clicks have none (the gate
    # answers them by direct message).
    response_url: str | None = Field(default=None, pattern=r"^https?://\S+$", max_length=2000)

    @model_validator(mode="after")
    def _has_channel(self) -> BlockActions:
        if self.container and self.container.type == "view" and self.view and self.view.type == "home":
            return self  # App Home: no channel, no response_url
        if not ((self.channel and self.channel.id) or (self.container and self.container.channel_id)):
            raise ValueError("no channel: neither channel.id nor container.channel_id is given")
        if not self.response_url:
            raise ValueError("response_url: a click on a message carries one")
        return self


class View(ViewRef):
    id: NonEmpty
    callback_id: str


class ViewPayload(Envelope):
    type: Literal["view_submission", "view_closed"]
    user: Clicker
    view: View


class AppHomeOpened(_Model):
    type: Literal["app_home_opened"]
    user: NonEmpty
    tab: str | None = None
    channel: str | None = None
    event_ts: str | None = None
    view: ViewRef | None = None


class EventCallback(Envelope):
    """Events API: hvbot subscribes to `app_home_opened` only."""

    type: Literal["event_callback"]
    event: AppHomeOpened  # type: ignore[assignment]  # narrower than Envelope's: the one event hvbot takes
    team_id: NonEmpty
    event_id: str | None = None
    event_time: int | None = None


class UrlVerification(Envelope):
    type: Literal["url_verification"]
    challenge: NonEmpty


class SslCheck(_Model):
    ssl_check: Literal["1"]
    token: str = ""


KINDS: dict[str, type[_Model]] = {
    "block_actions": BlockActions, "view_submission": ViewPayload, "view_closed": ViewPayload,
    "url_verification": UrlVerification, "event_callback": EventCallback,
}


def parse(raw: str, content_type: str | None) -> dict[str, Any]:
    """The body as Bolt will see it (the same choice of JSON, form, or form with a `payload` field), or
    MalformedBody. Unlike Bolt's parser it never raises anything else and refuses ambiguous forms."""
    if not raw:
        raise MalformedBody("empty body: a Slack request has a form or JSON body")
    if content_type == "application/json" or raw.startswith("{"):
        return _json_object(raw, "body")
    try:
        fields = parse_qsl(raw, keep_blank_values=True, strict_parsing=True, max_num_fields=200)
    except ValueError:
        raise MalformedBody("body is neither a form (a=1&b=2) nor JSON") from None
    form: dict[str, str] = {}
    for key, value in fields:
        if key in form:
            raise MalformedBody(f"form field {key[:40]!r} is given twice")
        form[key] = value
    if "payload" in form:
        return _json_object(form["payload"], "payload")
    return form


def problem(body: object) -> str | None:
    """None when `body` is a request hvbot handles and of the right shape; else what is wrong, in one sentence."""
    if not isinstance(body, dict):
        return f"the payload is a JSON {_json_type(body)}, not an object"
    if _depth(body) > MAX_DEPTH:
        return f"the payload nests deeper than {MAX_DEPTH} levels"
    model, kind = _model_of(body)
    if model is None:
        return kind
    try:
        model.model_validate(body)
    except ValidationError as exc:
        return f"malformed {kind} payload: {_summary(exc)}"
    return None


def _model_of(body: dict[str, Any]) -> tuple[type[_Model] | None, str]:
    if "command" in body:
        return SlashCommand, "slash command"
    if "ssl_check" in body:
        return SslCheck, "ssl_check"
    kind = body.get("type")
    if isinstance(kind, str) and kind in KINDS:
        return KINDS[kind], kind
    shown = repr(kind)[:40] if kind is not None else "missing"
    return None, (f"unsupported payload type ({shown}): hvbot takes slash commands, block_actions, "
                  "view_submission, view_closed and app_home_opened events")


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise MalformedBody(f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise MalformedBody(f"{what} is a JSON {_json_type(value)}, not an object")
    return value


def _json_type(value: object) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number"}
    return names.get(type(value), "null")


def _depth(value: object) -> int:
    """Nesting depth, iteratively: a recursive walk would itself overflow on the inputs it exists to refuse."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            return level
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _summary(exc: ValidationError) -> str:
    """The first few problems as `where: what`, without the input (a refusal never echoes what it refuses)."""
    parts: dict[str, str] = {}
    for error in exc.errors(include_input=False, include_url=False):
        loc = [str(part) for part in error["loc"]]
        tag = next((i for i, part in enumerate(loc) if part in UNION_TAGS), None)
        where = ".".join(loc if tag is None else loc[:tag]) or "payload"
        what = ID_UNION if tag is not None else str(error["msg"]).removeprefix("Value error, ")
        parts.setdefault(where, re.sub(r" or instance of \w+", "", what))
    shown = [f"{where}: {what}" if where != "payload" else what for where, what in list(parts.items())[:MAX_ERRORS]]
    more = len(parts) - MAX_ERRORS
    return "; ".join(shown) + (f" (and {more} more)" if more > 0 else "")
