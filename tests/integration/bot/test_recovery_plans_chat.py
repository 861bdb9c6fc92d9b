"""`/hyperv plans` and `/hyperv plan NAME` through signed Slack requests into the Bolt app, on real Redis, with the
health of real replica-health sweeps of the lab's default fleet (pypsrp over HTTP) and the shipped example plans.
Then site A loses power: the plan still lists its VMs, now known from the replica side, with Critical health."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from slack_bolt import App, BoltRequest

from bot.app import build_app
from bot.runtime import build_runtime
from bot.settings import Settings
from jobs.hyperv import process_fleet
from jobs.hyperv.hosts import load_inventory
from jobs.monitor.state import AlertEngine
from jobs.monitor.sweep import sweep_host
from jobs.recovery.model import Scope, ScopeKind
from jobs.recovery.plans import load_plans
from jobs.recovery.resolve import NOT_IN_ANY_PLAN, fleet_pairs, resolve
from lab.fleet_file import default_fleet
from tests.support.fixtures_slack import BOT_TOKEN, SIGNING_SECRET, signed_headers, slash_body


@pytest.fixture
def world(redis_conn: redis.Redis, make_lab, fake_slack, tmp_path: Path, monkeypatch) -> Iterator[dict[str, Any]]:
    lab = make_lab(fleet=default_fleet())
    inventory = lab.write_inventory(tmp_path / "inventory.yml")
    monkeypatch.setenv("HVBOT_INVENTORY", str(inventory))
    monkeypatch.delenv("HVBOT_RECOVERY_PLANS_DIR", raising=False)  # the shipped examples
    process_fleet._fleet_cache.clear()
    settings = Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET, inventory=inventory,
                        slack_api_url=fake_slack.api_url, queue="hvbot-recovery-plans-test", viewers=["U200"])
    app = build_app(settings, runtime=build_runtime(settings, connection=redis_conn))
    yield {"lab": lab, "app": app, "r": redis_conn, "inventory": inventory}
    for fleet in process_fleet._fleet_cache.values():
        fleet.close()
    process_fleet._fleet_cache.clear()


def _sweep(w: dict[str, Any]) -> None:
    """One real sweep of every host (Get-VMReplication + Measure-VMReplication over pypsrp), stored in Redis."""
    for host in w["lab"].hosts:
        sweep_host(w["r"], process_fleet.fleet(), host, datetime.now(UTC), AlertEngine(w["r"]), None)


def _say(app: App, text: str, user: str = "U200") -> dict[str, Any]:
    body = slash_body(text, user=user)
    response = app.dispatch(BoltRequest(body=body, headers={k.lower(): [v] for k, v in signed_headers(body).items()}))
    assert response.status == 200
    return json.loads(response.body)


def _text(answer: dict[str, Any]) -> str:
    return "\n".join(e.get("text", "") if isinstance(e, dict) else "" for b in answer["blocks"]
                     for e in ([b.get("text")] if b.get("text") else b.get("elements", [])))


def test_plans_lists_every_plan_with_its_vms_health(world):
    _sweep(world)
    answer = _say(world["app"], "plans")
    text = _text(answer)
    assert answer["text"] == "2 recovery plans"
    assert "*site-a-core* — Site A - network and identity first" in text
    assert "11 VMs in 3 groups: infrastructure (3) → databases (2) → applications (6)" in text
    assert "drill every 30 d at Sun 03:00 UTC" in text and "no scheduled drill" in text
    assert "health: 11 Normal" in text and "health: 10 Normal" in text
    assert "Replication health as of the last sweep" in text


def test_plan_shows_groups_in_order_with_replica_host_state_health_and_settings(world):
    _sweep(world)
    text = _text(_say(world["app"], "plan SITE-A-CORE"))
    infra, databases, apps = (text.index(f"*{i}. {g}*") for i, g in
                              ((1, "infrastructure"), (2, "databases"), (3, "applications")))
    assert infra < databases < apps
    assert ("*1. infrastructure* — waits for heartbeat · time limit 10 min · on failure: stop · "
            "only primaries on site-a") in text
    assert "*2. databases* — waits for heartbeat · then 30 s delay · time limit 15 min" in text
    assert "• `fw01` hv-a1 → hv-b1 · Replicating · Normal · lag" in text
    assert text.index("`fw01`") < text.index("`dc01`") < text.index("`dc02`") < databases
    assert "`mail02` hv-a2 → hv-b2 (extended to hv-b1) · Replicating · Normal" in text
    assert "deploy/recovery-plans/site-a-core.yaml" in text


def test_after_site_a_loses_power_the_plan_still_knows_its_vms_from_the_replica_side(world):
    _sweep(world)
    world["lab"].control(None, "power_loss", {"site": "site-a"})
    _sweep(world)
    inventory = load_inventory(world["inventory"])
    site = resolve(Scope(ScopeKind.SITE, "site-a"), load_plans(), fleet_pairs(world["r"], inventory), inventory)
    assert [g.name for g in site.groups] == ["site-a-core/infrastructure", "site-a-core/databases",
                                             "site-a-core/applications", NOT_IN_ANY_PLAN]
    assert [m.vm for m in site.groups[0].vms] == ["fw01", "dc01", "dc02"]
    assert sorted(m.vm for m in site.groups[-1].vms) == sorted(
        ["log01", "mon01", "build01", "jump01", "log02", "mon02", "build02", "jump02"])
    assert all(m.replica_host.startswith("hv-b") for m in site.vms())
    text = _text(_say(world["app"], "plan site-a-core"))
    assert "• `fw01` hv-a1 → hv-b1 · Replicating · Critical" in text and ":warning:" in text
    assert "health: 11 Critical" in _text(_say(world["app"], "plans"))


def test_bad_names_and_broken_plan_files_get_clear_answers(world, tmp_path: Path, monkeypatch):
    assert "no recovery plan is called `nope`; known plans: `site-a-core`, `site-b-core`" in _text(
        _say(world["app"], "plan nope"))
    assert "No sweep has run yet" in _text(_say(world["app"], "plan site-b-core"))
    broken = tmp_path / "plans"
    broken.mkdir()
    (broken / "x.yaml").write_text("name: x\ngroups:\n  - name: g\n    vms: []\n")
    monkeypatch.setenv("HVBOT_RECOVERY_PLANS_DIR", str(broken))
    text = _text(_say(world["app"], "plans"))
    assert f"{broken / 'x.yaml'}:4: groups[0].vms: the group is empty" in text
    assert "Usage" in _text(_say(world["app"], "plan"))
