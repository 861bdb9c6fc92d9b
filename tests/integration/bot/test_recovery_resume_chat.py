"""Resume after a killed worker, end to end: a real `hvbot worker` is SIGKILLed mid-plan during a site failover;
the dead-run chore (called here, not waited for on a timer) shows on the card where every VM stands; the card's
Resume, clicked by the operator through a signed request, previews the VMs not done, and only a second person's
Approve runs them, on a new real worker. The lab's command log proves no VM was failed over twice and every VM
ended failed over. No sleeps: the test waits on the fake Slack's recorded calls and on Redis with deadlines.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from slack_bolt import App

from bot.app import build_app
from bot.cli.reporters import reporters_installed
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from jobs.hyperv import process_fleet
from jobs.keys import ALIVE_KEY
from jobs.recovery.model import OnFailure, ResolvedPlan, Scope, ScopeKind
from jobs.recovery.progress import RunProgress
from tests.integration.bot.test_recovery_chat import _approve, _dispatch, _refusals, _request
from tests.integration.bot.test_recovery_run_chat import (  # noqa: F401  # world is a fixture
    ONCALL, OP, REPLICA, World, _buttons, _group, _text, world,
)
from tests.support.fixtures_redis import TEST_QUEUE, wait_until
from tests.support.fixtures_slack import BOT_TOKEN, SIGNING_SECRET, HvbotProcess, action_body, free_port

APPROVER = "U0AP1"  # the worker processes' HVBOT_APPROVERS
FIRST = [("fw01", "hv-a1"), ("dc02", "hv-a2")]
SECOND = [("web01", "hv-a1"), ("sql01", "hv-a1"), ("file01", "hv-a1"), ("web02", "hv-a2"), ("sql02", "hv-a2"),
          ("file02", "hv-a2")]


@pytest.fixture
def bot(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The Bolt app in this process (signed requests in, the fake Slack out), with the world's Redis and lab."""
    monkeypatch.setenv("HVBOT_INVENTORY", world.env["HVBOT_INVENTORY"])
    process_fleet._fleet_cache.clear()
    settings = Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                        slack_api_url=world.fake.api_url, queue=TEST_QUEUE, channel_post_interval_seconds=0,
                        operators=[OP], approvers=[APPROVER], approval_channel=ONCALL, abandoned_check_seconds=0.5)
    runtime = build_runtime(settings, connection=world.conn)
    app = build_app(settings, runtime=runtime)
    with reporters_installed(runtime):
        yield {"app": app, "runtime": runtime, "fake": world.fake, "conn": world.conn}
    process_fleet._fleet_cache.clear()


def _named(entry: Any) -> set[str]:
    return {str(v) for _, val in entry.parameters for v in (val if isinstance(val, list) else [val])}


def _kill_mid_plan(world: World, worker: HvbotProcess, run_id: str) -> dict[str, str]:
    """SIGKILL the worker once a VM of group 2 is done while others wait; returns every VM's state at that moment."""
    progress = RunProgress(world.conn, run_id)

    def some_apps_done() -> bool:
        apps = [v["state"] for v in progress.snapshot().get("vms", []) if v["group"] == "apps"]
        return "done" in apps and "waiting" in apps

    wait_until(some_apps_done, 90, "a VM of group 2 done while others wait")
    alive = ALIVE_KEY.format(f"rp{run_id}")
    horse = int(wait_until(lambda: world.conn.get(alive), 10, "heartbeat"))  # type: ignore[arg-type]
    os.killpg(worker.proc.pid, signal.SIGKILL)  # the worker and its scheduler, as if the machine died
    os.kill(horse, signal.SIGKILL)  # the work horse runs in a session of its own
    return {v["vm"]: v["state"] for v in progress.snapshot()["vms"]}


def _resume_and_approve(bot: dict[str, Any], world: World, card: dict[str, str], run_id: str) -> str:
    """Resume (operator) → preview → Request (operator) → Approve (a second person); returns the new approval id."""
    fake, before = world.fake, len(world.fake.calls)
    _dispatch(bot["app"], action_body("hvbot_recovery_resume", run_id, user=OP, channel=ONCALL,
                                      message_ts=card["ts"], response_url=fake.response_url("resume")))
    preview = fake.wait_for(lambda calls: next((c for c in calls[before:] if c.method == "chat.postMessage"
                                                and _buttons(c).get("hvbot_rc_request")), None), 60)
    approve = _request(bot, _buttons(preview)["hvbot_rc_request"], user=OP)
    _approve(bot, approve, user=OP)  # the requester cannot approve it
    assert "self_approval" in " ".join(_refusals(bot))
    _approve(bot, approve, user=APPROVER)
    return approve.split(".")[0]


@pytest.mark.timeout(400)
def test_killed_worker_resume_needs_a_new_approval_and_runs_only_the_rest(world: World, bot: dict[str, Any]) -> None:
    groups = (_group("core", FIRST, on_failure=OnFailure.STOP), _group("apps", SECOND, wait_heartbeat=False))
    plan = ResolvedPlan(Scope(ScopeKind.SITE, "site-a"), "", groups)
    env = world.env | {"HVBOT_RECOVERY_PER_HOST_PARALLEL": "1"}
    port = free_port()
    worker = HvbotProcess(["worker", "--name", f"doomed-rec-{port}"], env)
    try:
        for host in ("hv-b1", "hv-b2"):  # each exchange takes 0.1 s: the plan takes seconds
            world.lab.control(host, "latency", {"seconds": 0.1})
        card = world.card()
        world.start("ap2", plan, card)
        at_kill = _kill_mid_plan(world, worker, "ap2")
    finally:
        worker.stop()
        for host in ("hv-b1", "hv-b2"):
            world.lab.control(host, "latency", {"seconds": 0})
    wait_until(lambda: not world.conn.exists(ALIVE_KEY.format("rpap2")), 30, "the dead run's heartbeat to lapse")
    assert bot["runtime"].sweep_dead_recoveries() == 1  # the chore the watcher runs every period
    stopped = world.card_update(card, "worker died", 10)
    shown, states = _text(stopped), {v["vm"]: v["state"] for v in RunProgress(world.conn, "ap2").snapshot()["vms"]}
    done = {vm for vm, state in states.items() if state == "done"}
    assert {"fw01", "dc02"} <= done and done != set(states) and done == {vm for vm, s in at_kill.items() if s == "done"}
    marks = {"done": "✓", "waiting": "·", "interrupted": "!"}
    for vm, state in states.items():
        assert state in marks and f"{marks[state]} {vm}" in shown, (vm, state)  # the card says where each VM is
    assert _buttons(stopped)["hvbot_recovery_resume"] == "ap2"

    again = HvbotProcess(["worker", "--name", f"resume-rec-{port}"], env)
    try:
        resumed = _resume_and_approve(bot, world, card, "ap2")
        wait_until(lambda: RunProgress(world.conn, resumed).meta().get("status") == "finished", 120,
                   "the resumed run to finish")
    finally:
        again.stop()
    resumed_states = {v["vm"]: v["state"] for v in RunProgress(world.conn, resumed).snapshot()["vms"]}
    assert resumed_states and not set(resumed_states) & done  # only the VMs not done were planned again
    for vm, state in resumed_states.items():  # a VM killed between its failover and its start is refused, not redone
        assert state == "done" or states[vm] == "interrupted", (vm, state)
    failovers = [vm for e in world.lab.command_log() if e.cmdlet == "Start-VMFailover" for vm in _named(e)
                 if vm in states]
    assert sorted(failovers) == sorted(states), failovers  # every VM once: none twice, none left out
    for vm, primary in FIRST + SECOND:
        replica = world.lab.fleet.vm(REPLICA[primary], vm)
        assert replica.replication is not None and replica.replication.state == "FailedOverWaitingCompletion", vm
        if vm in done or resumed_states.get(vm) == "done":
            assert str(replica.state) == "Running", vm
