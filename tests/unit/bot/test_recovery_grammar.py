"""`failover --site|--host` and `plan NAME failover`: scopes, roles, clear refusals; single-VM forms unchanged."""

from __future__ import annotations

import pytest

from bot.grammar import OPERATOR, VIEWER, CommandError, RecoveryScope, parse, recovery_scope


@pytest.mark.parametrize(("text", "scope"), [
    ("failover --site site-a", RecoveryScope("site", "site-a", "planned")),
    ("failover --site site-a unplanned", RecoveryScope("site", "site-a", "unplanned")),
    ("failover unplanned --site site-a", RecoveryScope("site", "site-a", "unplanned")),
    ("failover --host hv-a1 test", RecoveryScope("host", "hv-a1", "test")),
    ("failover --host hv-a1", RecoveryScope("host", "hv-a1", "planned")),
    ("plan dr-core failover", RecoveryScope("plan", "dr-core", "planned")),
    ("plan dr-core failover UNPLANNED", RecoveryScope("plan", "dr-core", "unplanned")),
])
def test_scope_forms(text: str, scope: RecoveryScope) -> None:
    command = parse(text)
    assert recovery_scope(command) == scope and command.role == OPERATOR


@pytest.mark.parametrize("text", ["failover fw01", "failover fw01 unplanned --point p1", "failover fw01 --host hv-a1",
                                  "failover fw01 cancel --host hv-b1", "plan dr-core", "vms"])
def test_single_vm_and_other_forms_are_no_scope(text: str) -> None:
    assert recovery_scope(parse(text)) is None


def test_plan_alone_is_a_viewers_command_and_canonical_keeps_the_site() -> None:
    assert parse("plan dr-core").role == VIEWER
    assert parse("failover --site site-a unplanned").canonical() == "failover unplanned --site site-a"


@pytest.mark.parametrize(("text", "message"), [
    ("failover --site site-a fw01", "takes no VM name"),
    ("failover --site site-a --host hv-a1", "not both"),
    ("failover --site site-a cancel now", "planned, unplanned, test, and after one complete, cancel, reverse"),
    ("failover --site site-a unplanned --point p1", "`--point` chooses a recovery point of one VM"),
    ("failover --site 'site a!'", "is not a site name"),
    ("failover --site", "`--site` needs a value"),
    ("plan dr-core reverse", "optionally followed by `failover`"),
    ("plan dr-core failover prepare", "A plan fails over as planned, unplanned, test"),
    ("plan dr* failover", "no * wildcards"),
])
def test_bad_forms_say_what_to_do(text: str, message: str) -> None:
    with pytest.raises(CommandError, match=message.replace("*", r"\*").replace("`", "`")):
        parse(text)


@pytest.mark.parametrize(("text", "scope"), [
    ("failover --site site-a complete", ("site", "site-a", "complete")),
    ("failover --host hv-a1 reverse", ("host", "hv-a1", "reverse")),
    ("plan dr-core failover cancel", ("plan", "dr-core", "cancel")),
])
def test_a_runs_follow_ups_for_its_whole_scope_parse(text: str, scope: tuple[str, str, str]) -> None:
    found = recovery_scope(parse(text))
    assert found is not None and (found.kind, found.value, found.failover) == scope
