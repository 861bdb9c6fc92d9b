"""The /hyperv grammar: text -> Command, usage lines, suggestions, help from the grammar."""

from __future__ import annotations

import pytest

from bot.grammar import GRAMMAR, CommandError, help_text, parse


def test_ips_with_targets_host_and_here() -> None:
    cmd = parse("ips 10.0.4.17 web01 10.0.5. --host hv-a1 --here")
    assert (cmd.verb, cmd.args, cmd.host, cmd.here) == ("ips", ("10.0.4.17", "web01", "10.0.5."), "hv-a1", True)
    assert cmd.canonical() == "ips 10.0.4.17 web01 10.0.5. --host hv-a1 --here"


def test_empty_text_is_help() -> None:
    assert parse("   ").verb == "help"


def test_slack_autolinked_host_is_unwrapped() -> None:
    assert parse("vms <http://hv-a1.lab.local|hv-a1.lab.local>").args == ("hv-a1.lab.local",)


def test_smart_quotes_and_em_dash_option() -> None:
    cmd = parse("checkpoints \u201cweb01\u201d \u2014host hv-b1")
    assert (cmd.args, cmd.host) == (("web01",), "hv-b1")


def test_unknown_verb_suggests() -> None:
    with pytest.raises(CommandError) as err:
        parse("mem web01")
    assert "Did you mean `memory`" in err.value.text()


def test_wrong_arity_gives_usage() -> None:
    with pytest.raises(CommandError) as err:
        parse("checkpoints")
    assert "Usage: `/hyperv checkpoints VM [--host HOST] [--here]`" in err.value.text()


def test_unknown_option_suggests() -> None:
    with pytest.raises(CommandError) as err:
        parse("ips --hots hv-a1")
    assert "Did you mean `--host`" in err.value.message


def test_audit_bounds_and_cancel_ids() -> None:
    assert parse("audit 5").args == ("5",)
    for bad in ("audit 0", "audit 101", "audit x", "cancel a:b", "jobs extra"):
        with pytest.raises(CommandError):
            parse(bad)


def test_help_lists_every_verb_with_usage() -> None:
    text = help_text()
    for verb in GRAMMAR:
        assert verb.usage() in text
    assert "approver" in help_text("audit")


def test_quoted_vm_name_with_space_and_bad_host() -> None:
    assert parse('memory "web 01"').args == ("web 01",)
    with pytest.raises(CommandError):
        parse("ips --host ../../x")


def test_memory_at_max_is_a_flag_kept_in_the_canonical_form() -> None:
    cmd = parse("memory --at-max --here")
    assert (cmd.verb, cmd.args, cmd.extra, cmd.here) == ("memory", (), {"at-max": "1"}, True)
    assert cmd.canonical() == "memory --at-max --here"
    assert parse("memory web01 --host hv-a1 \u2014at-max").canonical() == "memory web01 --host hv-a1 --at-max"
    assert "[--at-max]" in help_text("memory") and "worst first" in help_text("memory")
    with pytest.raises(CommandError) as err:
        parse("memory --at-maxx")
    assert "Did you mean `--at-max`" in err.value.message
    with pytest.raises(CommandError):
        parse("vms --at-max")  # only memory has it
