"""Roles by user and user-group ID, the no-roles default, allowed channels, group cache."""

from __future__ import annotations

from bot.roles import Authorizer, GroupCache


def test_no_roles_everyone_viewer_nobody_operator() -> None:
    authz = Authorizer()
    assert authz.role_of("U1") == "viewer"
    assert authz.check("U1", "C1", "viewer", "ips").allowed
    refused = authz.check("U1", "C1", "operator", "cancel")
    assert not refused.allowed and "*operator* role" in refused.reason
    assert not authz.check("U1", "C1", "approver", "audit").allowed


def test_roles_by_user_and_group_with_hierarchy() -> None:
    fetched: list[str] = []

    def fetch(group: str) -> list[str]:
        fetched.append(group)
        return ["U7"] if group == "S1" else []

    now = [0.0]
    groups = GroupCache(fetch, ttl_seconds=60, clock=lambda: now[0])
    authz = Authorizer(viewers=["U2"], operators=["U3"], approvers=["S1"], groups=groups)
    assert authz.role_of("U7") == "approver" and authz.has_role("U7", "operator")
    assert authz.role_of("U3") == "operator" and not authz.has_role("U3", "approver")
    assert authz.role_of("U2") == "viewer"
    assert authz.role_of("U9") is None  # a viewer list is configured and U9 is not on it
    assert not authz.check("U9", "C1", "viewer", "ips").allowed
    calls = len(fetched)
    authz.role_of("U7")
    assert len(fetched) == calls  # cached
    now[0] = 61
    authz.role_of("U7")
    assert len(fetched) > calls  # refreshed after the TTL


def test_allowed_channels() -> None:
    authz = Authorizer(allowed_channels=["C1"])
    assert authz.check("U1", "C1", "viewer", "ips").allowed
    refused = authz.check("U1", "C2", "viewer", "ips")
    assert not refused.allowed and "not enabled in this channel" in refused.reason


def test_group_fetch_failure_keeps_last_answer() -> None:
    answers: list[object] = [["U1"], RuntimeError("slack down")]

    def fetch(group: str) -> list[str]:
        value = answers.pop(0)
        if isinstance(value, Exception):
            raise value
        return value  # type: ignore[return-value]

    now = [0.0]
    cache = GroupCache(fetch, ttl_seconds=1, clock=lambda: now[0])
    assert cache.members("S1") == {"U1"}
    now[0] = 5
    assert cache.members("S1") == {"U1"}
