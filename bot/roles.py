"""Who may run what: roles from Slack user IDs and user-group IDs, and the channels hvbot answers in."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bot.grammar import APPROVER, OPERATOR, VIEWER

RANK = {VIEWER: 1, OPERATOR: 2, APPROVER: 3}  # each role includes the ones below it

GroupMembers = Callable[[str], Iterable[str]]  # usergroup ID -> member user IDs (usergroups.users.list)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


class GroupCache:
    """Members of Slack user groups, cached briefly (usergroups.users.list is Tier 2)."""

    def __init__(self, fetch: GroupMembers, ttl_seconds: float, clock: Callable[[], float] = time.monotonic):
        self._fetch = fetch
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, frozenset[str]]] = {}

    def members(self, group_id: str) -> frozenset[str]:
        now = self._clock()
        with self._lock:
            hit = self._entries.get(group_id)
        if hit and now - hit[0] < self._ttl:
            return hit[1]
        try:
            users = frozenset(self._fetch(group_id))
        except Exception:  # noqa: BLE001 - Slack unreachable or plan without groups: keep the last answer
            return hit[1] if hit else frozenset()
        with self._lock:
            self._entries[group_id] = (now, users)
        return users


class Authorizer:
    def __init__(
        self,
        viewers: Iterable[str] = (),
        operators: Iterable[str] = (),
        approvers: Iterable[str] = (),
        allowed_channels: Iterable[str] = (),
        groups: GroupCache | None = None,
    ) -> None:
        self._ids = {VIEWER: tuple(viewers), OPERATOR: tuple(operators), APPROVER: tuple(approvers)}
        self._channels = frozenset(allowed_channels)
        self._groups = groups

    @property
    def configured(self) -> bool:
        return any(self._ids.values())

    def role_of(self, user_id: str) -> str | None:
        """The highest role the user holds; with no roles configured everyone is a viewer."""
        for role in (APPROVER, OPERATOR, VIEWER):
            if self._holds(user_id, self._ids[role]):
                return role
        if not self._ids[VIEWER]:
            return VIEWER  # no viewer list: everyone may look, only listed people may act
        return None

    def has_role(self, user_id: str, role: str) -> bool:
        held = self.role_of(user_id)
        return held is not None and RANK[held] >= RANK[role]

    def channel_allowed(self, channel_id: str) -> bool:
        return not self._channels or channel_id in self._channels

    def check(self, user_id: str, channel_id: str, role: str, verb: str, also_in: Iterable[str] = ()) -> Decision:
        """`also_in`: channels allowed for this check besides the allowed list (the approval channel)."""
        if channel_id not in also_in and not self.channel_allowed(channel_id):
            return Decision(False, "hvbot is not enabled in this channel; ask an admin to add it to HVBOT_ALLOWED_CHANNELS.")
        if self.has_role(user_id, role):
            return Decision(True)
        return Decision(False, f"`{verb}` needs the *{role}* role, which you do not have. Ask an hvbot admin.")

    def _holds(self, user_id: str, ids: tuple[str, ...]) -> bool:
        for entry in ids:
            if entry == user_id:
                return True
            if entry.startswith("S") and self._groups is not None and user_id in self._groups.members(entry):
                return True
        return False


def slack_group_fetcher(client: object) -> GroupMembers:
    """usergroups.users.list through a slack_sdk WebClient."""

    def fetch(group_id: str) -> list[str]:
        response = client.usergroups_users_list(usergroup=group_id)  # type: ignore[attr-defined]
        return list(response.get("users") or [])

    return fetch
