"""Recovery plan files: loaded into RecoveryPlan, and every mistake reported with its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.recovery.model import DrillSchedule, OnFailure
from jobs.recovery.plans import PlanError, find_plan, load_plans, parse_plan
from jobs.recovery.settings import SHIPPED_PLANS, RecoverySettings

GOOD = """\
name: core
description: identity first
drill:
  every: 30d
  at: "Sun 03:00"
  without_approval: true
groups:
  - name: identity
    vms: [fw01, "dc*"]
    site: site-a
    delay: 30s
    time_limit: 10m
    on_failure: stop
  - name: apps
    vms: ["web*"]
    host: hv-a1
    wait_heartbeat: false
"""


def _problems(text: str, source: str = "plans/core.yaml") -> list[str]:
    with pytest.raises(PlanError) as caught:
        parse_plan(text, source)
    return list(caught.value.problems)


def test_a_plan_file_becomes_a_recovery_plan():
    plan = parse_plan(GOOD, "plans/core.yaml")
    assert plan.name == "core" and plan.source == "plans/core.yaml" and plan.description == "identity first"
    assert plan.drill == DrillSchedule(every_s=30 * 86400, at="Sun 03:00", without_approval=True)
    first, second = plan.groups
    assert (first.name, first.members, first.site, first.host) == ("identity", ("fw01", "dc*"), "site-a", None)
    assert (first.wait_heartbeat, first.delay_s, first.timeout_s, first.on_failure) == (True, 30, 600, OnFailure.STOP)
    assert (second.host, second.wait_heartbeat, second.delay_s, second.timeout_s, second.on_failure) == (
        "hv-a1", False, 0, 900, OnFailure.CONTINUE)


def test_an_unknown_key_names_file_line_and_key():
    text = GOOD.replace("    on_failure: stop\n", "    on_falure: stop\n")
    assert _problems(text) == [
        "plans/core.yaml:13: groups[0].on_falure: unknown key `on_falure`; check its spelling "
        "(see the format in deploy/recovery-plans/README.md)"]


def test_an_empty_group_and_a_bad_duration_are_both_reported_with_their_lines():
    text = GOOD.replace('vms: ["web*"]', "vms: []").replace("delay: 30s", "delay: 30x")
    assert _problems(text) == [
        "plans/core.yaml:11: groups[0].delay: `30x` is not a duration such as 30m, 2h, 1h30m or 1d",
        "plans/core.yaml:15: groups[1].vms: the group is empty; list its VMs by name or pattern, "
        "e.g. vms: [dc01, \"web*\"]",
    ]


def test_a_vm_in_two_groups_of_one_plan_is_an_error():
    text = GOOD.replace('vms: ["web*"]', 'vms: ["web*", DC*]')
    assert _problems(text) == [
        "plans/core.yaml:15: groups[1].vms[1]: `DC*` is already in group `identity`; a VM belongs to one group "
        "of a plan"]


def test_other_mistakes_have_clear_messages():
    assert _problems("name: core\n") == ["plans/core.yaml:1: groups: `groups` is missing"]
    assert _problems("- just\n- a list\n") == [
        "plans/core.yaml:1: a plan file holds one mapping with `name:` and `groups:`"]
    assert _problems("name: core\ngroups: [\n")[0].startswith("plans/core.yaml:3: not valid YAML")
    assert _problems(GOOD.replace("name: core", "name: core plan")) == [
        "plans/core.yaml:1: name: `core plan` is not a plan name: use letters, digits, '.', '_' and '-' (up to 64)"]
    assert _problems(GOOD.replace('"Sun 03:00"', '"Sunday at 3"')) == [
        "plans/core.yaml:5: drill.at: `Sunday at 3` is not a time such as \"Sun 03:00\" or \"03:00\" (UTC)"]
    assert _problems(GOOD.replace("time_limit: 10m", "time_limit: 10m\n    delay: 5s")) == [
        "plans/core.yaml:13: key `delay` is given twice"]
    assert _problems(GOOD.replace("on_failure: stop", "on_failure: halt"))[0].startswith(
        "plans/core.yaml:13: groups[0].on_failure: Input should be 'stop' or 'continue'")
    assert _problems(GOOD.replace("every: 30d", "every: 5m")) == [
        "plans/core.yaml:4: drill.every: `5m` is too often for a drill; drill at most once an hour (e.g. every: 7d)"]
    assert _problems(GOOD.replace("delay: 30s", "delay: 30")) == [
        "plans/core.yaml:11: groups[0].delay: `30` is not a duration such as 30m, 2h, 1h30m or 1d"]


def test_a_directory_loads_in_file_order_and_refuses_a_plan_name_used_twice(tmp_path: Path):
    (tmp_path / "b.yaml").write_text(GOOD.replace("name: core", "name: second"))
    (tmp_path / "a.yml").write_text(GOOD)
    (tmp_path / "notes.txt").write_text("not a plan")
    assert [p.name for p in load_plans(tmp_path)] == ["core", "second"]
    (tmp_path / "c.yaml").write_text("# the same name again\n" + GOOD.replace("name: core", "name: CORE"))
    (tmp_path / "d.yaml").write_text(GOOD.replace("10m", "ten minutes"))
    with pytest.raises(PlanError) as caught:
        load_plans(tmp_path)
    assert caught.value.problems == (
        f"{tmp_path / 'c.yaml'}:2: name: plan `CORE` is also defined in {tmp_path / 'a.yml'}; plan names must be unique",
        f"{tmp_path / 'd.yaml'}:12: groups[0].time_limit: `ten minutes` is not a duration such as 30m, 2h, 1h30m or 1d",
    )


def test_a_missing_directory_says_which_setting_to_fix(tmp_path: Path):
    with pytest.raises(PlanError, match="HVBOT_RECOVERY_PLANS_DIR"):
        load_plans(tmp_path / "nowhere")


def test_the_setting_chooses_the_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "core.yaml").write_text(GOOD)
    monkeypatch.setenv("HVBOT_RECOVERY_PLANS_DIR", str(tmp_path))
    assert RecoverySettings().plans_dir == tmp_path
    assert [p.name for p in load_plans()] == ["core"]


def test_the_shipped_examples_load_and_fit_the_default_fleet_names():
    plans = load_plans(SHIPPED_PLANS)
    assert [p.name for p in plans] == ["site-a-core", "site-b-core"]
    assert find_plan(plans, "SITE-A-CORE").groups[0].members == ("fw*", "dc*")
    with pytest.raises(PlanError, match="no recovery plan is called `nope`; known plans: `site-a-core`, `site-b-core`"):
        find_plan(plans, "nope")
