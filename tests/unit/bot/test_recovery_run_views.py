"""The live card of a recovery run (pure): rows per state, Slack's block limits at 200+ VMs, the summary's
follow-up commands in the site/host/plan grammar, and Resume only once the run is over with VMs not done."""

from __future__ import annotations

import json
from typing import Any

from bot.views import recovery_run as rv
from bot.views.common import MAX_BLOCKS, MESSAGE_CHARS
from jobs.recovery.model import Member, PlanGroup, ResolvedGroup, ResolvedPlan, Scope, ScopeKind


def _run(n_groups: int, per_group: int, scope: Scope, states: dict[int, str] | None = None,
         **meta: Any) -> dict[str, Any]:
    groups, vms = [], []
    for g in range(n_groups):
        members = tuple(Member(f"vm-{g:02d}-{i:03d}", f"hv-a{i % 5}", f"hv-b{i % 5}") for i in range(per_group))
        groups.append(ResolvedGroup(f"group{g}", PlanGroup(f"group{g}", ("*",)), members))
        for i, m in enumerate(members):
            state = (states or {}).get(g * per_group + i, "waiting")
            vms.append({"vm": m.vm, "replica": m.replica_host, "group": f"group{g}", "state": state,
                        "seconds": 12.5 if state == "done" else None, "step": "1. Fail over", "error":
                        "Hyper-V failed to fail over" if state == "failed" else "", "state_now": ""})
    plan = ResolvedPlan(scope, scope.value if scope.kind is ScopeKind.PLAN else "", tuple(groups))
    return {"run_id": "ap9", "kind": "unplanned", "scope": {"kind": str(scope.kind), "value": scope.value},
            "plan": plan.to_dict(), "vms": vms, "status": "running"} | meta


def _size(view: rv.View) -> tuple[int, int]:
    blocks = view.block_dicts()
    return len(blocks), len(json.dumps(blocks))


def test_rows_show_each_state() -> None:
    run = _run(1, 4, Scope(ScopeKind.SITE, "site-a"), {0: "done", 1: "failed", 2: "running"})
    text = json.dumps(rv.card(run).block_dicts(), ensure_ascii=False)
    assert "✓ vm-00-000" in text and "12.5 s" in text
    assert "✗ vm-00-001" in text and "Hyper-V failed to fail over" in text
    assert "… vm-00-002" in text and "1. Fail over" in text
    assert "· vm-00-003" in text and "waiting" in text
    assert "Resume" not in text and "hvbot_recovery_command" not in text  # nothing to click while it runs


def test_two_hundred_vms_fit_slack_limits_and_keep_every_unfinished_row() -> None:
    states = {i: "done" for i in range(150)} | {150: "failed", 151: "running"}
    run = _run(4, 60, Scope(ScopeKind.SITE, "site-a"), states)
    blocks, chars = _size(rv.card(run))
    assert blocks <= MAX_BLOCKS and chars < MESSAGE_CHARS + 4000  # JSON adds quoting around the ~11k of text
    text = json.dumps(rv.card(run).block_dicts(), ensure_ascii=False)
    assert "vm-02-030" in text and "vm-02-031" in text  # the failed and the running row survive the folding
    assert "VMs done" in text


def test_summary_buttons_are_commands_of_the_runs_scope() -> None:
    summary = {"ok": False, "seconds": 42.0, "groups": [{"name": "group0", "seconds": 42.0}], "done": 3,
               "failed": 1, "skipped": 0, "stopped_after": None, "next_actions": ["complete", "cancel", "reverse"]}
    for scope, expected in ((Scope(ScopeKind.SITE, "site-a"), "failover --site site-a complete"),
                            (Scope(ScopeKind.HOST, "hv-a1"), "failover --host hv-a1 complete"),
                            (Scope(ScopeKind.PLAN, "tier1"), "plan tier1 failover complete")):
        run = _run(1, 4, scope, {0: "done", 1: "done", 2: "done", 3: "failed"}, status="finished", summary=summary)
        actions = {e["action_id"]: e["value"] for b in rv.card(run).block_dicts() if b["type"] == "actions"
                   for e in b["elements"]}
        assert actions[f"{rv.ACTION_COMMAND}_complete"] == expected
        assert actions[rv.ACTION_RESUME] == "ap9"  # the failed VM can be run again after a new approval
        assert "Recovery time: *42.0 s*" in json.dumps(rv.card(run).block_dicts())


def test_an_abandoned_run_offers_resume_and_says_why() -> None:
    run = _run(1, 3, Scope(ScopeKind.SITE, "site-a"), {0: "done", 1: "interrupted"}, status="abandoned",
               error="The worker running this plan stopped unexpectedly")
    text = json.dumps(rv.card(run).block_dicts(), ensure_ascii=False)
    assert "STOPPED: the worker died" in text and "stopped unexpectedly" in text
    assert "! vm-00-001" in text and "Resume plan (2 VMs not done)" in text
