"""backup-check and backup-window from Slack: signed requests through the Bolt app, a real RQ worker, the lab
(pypsrp over HTTP) and the fake Slack Web API. fw01 runs on hv-a1 and is replicated to hv-b1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from bot.adapters.fake_slack import FakeSlack
from jobs.hyperv import process_fleet
from lab.fleet import Lab
from lab.fleet_file import default_fleet
from tests.support.backup_slack_world import VIEWER_ID, World

VM = "fw01"


@pytest.fixture
def world(make_lab: Callable[..., Lab], fake_slack: FakeSlack, redis_conn: redis.Redis, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    lab = make_lab(fleet=default_fleet())
    lab.fleet.apply_control("clock", {"freeze": True})
    inventory = lab.write_inventory(tmp_path / "inventory.yml")
    monkeypatch.setenv("HVBOT_INVENTORY", str(inventory))
    monkeypatch.setenv("HVBOT_BACKUP_RESUME_VERIFY_S", "5")
    monkeypatch.setenv("HVBOT_BACKUP_RESUME_POLL_S", "0.05")
    process_fleet._fleet_cache.clear()
    w = World(lab, fake_slack, redis_conn, inventory)
    yield w
    w.close()


def replication(lab: Lab, host: str) -> tuple[str, str]:
    rep = lab.fleet.vm(host, VM).replication
    assert rep is not None
    return rep.state, rep.health


def test_transient_apply_window_then_ready_in_one_message(world: World) -> None:
    world.lab.fleet.apply_control("backup_condition", {"host": "hv-b1", "vm": VM, "condition": "log_apply",
                                                       "apply_seconds": 5})
    ack = world.say(f"backup-check {VM}", user=VIEWER_ID)  # a viewer may check
    assert "Checking whether fw01 can be backed up" in ack["text"]
    world.work()
    texts = world.texts("backup-check fw01")
    assert "(attempt 1 of 5)" in texts[-1] and "#1 replication logs (.hrl) are being applied" in texts[-1]
    assert "transient, clears by itself" in texts[-1] and "Next try at" in texts[-1], texts[-1]
    assert "not observable or only partly: #2" in texts[-1]  # unobservable conditions stated, not claimed
    assert [j.id.rsplit("-", 1)[1] for j in world.scheduled()] == ["2"]  # attempt 2 waits in RQ's schedule

    world.lab.fleet.apply_control("backup_condition", {"host": "hv-b1", "vm": VM, "condition": "log_apply",
                                                       "on": False})
    world.lab.fleet.apply_control("clock", {"advance_s": 5})  # the apply under way ends
    assert world.release_scheduled()
    world.work()
    posts, updates = world.messages("backup-check fw01")
    assert len(posts) == 1 and updates and all(u.args["ts"] == posts[0].response["ts"] for u in updates)
    final = str(updates[-1].args["text"])
    assert ":white_check_mark:" in final and "(attempt 2 of 5)" in final and "ready for a Replica-VM backup" in final
    assert not world.scheduled()


def test_not_transient_gives_up_at_once_naming_the_condition(world: World) -> None:
    world.lab.fleet.apply_control("backup_condition", {"host": "hv-b1", "vm": VM, "condition": "health_critical"})
    world.say(f"backup-check {VM}")
    world.work()
    final = world.texts("backup-check fw01")[-1]
    assert "#4 replica health is Critical (needs an operator)" in final and "Gave up" in final, final
    assert not world.scheduled()


def test_window_start_pauses_then_end_resumes_in_one_message(world: World) -> None:
    request_id = world.card(f"backup-window {VM} 30m")
    world.click("hvbot_bk_run", request_id, user=VIEWER_ID)  # a viewer clicking the operator's card: refused
    assert any("needs the *operator* role" in t for t in world.responses(f"click-{VIEWER_ID}"))
    assert not world.queue.get_job_ids()
    world.click("hvbot_bk_run", request_id)  # the request still waits for an operator's Run
    world.work()
    assert replication(world.lab, "hv-a1") == ("Suspended", "Warning")
    assert [j.id.endswith("-end") for j in world.scheduled()] == [True]  # the resume is scheduled
    status = world.texts("backup-window fw01")[-1]
    assert "replication paused on hv-a1" in status and "housekeeping" in status

    world.confirm(f"backup-window {VM} end")
    world.work()
    assert replication(world.lab, "hv-a1") == ("Replicating", "Normal")
    posts, updates = world.messages("backup-window fw01")
    assert len(posts) == 1 and "and verified: Replicating / Normal" in str(updates[-1].args["text"])


def test_window_needs_an_operator_at_click_time(world: World) -> None:
    ack = world.say(f"backup-window {VM} 1h", user=VIEWER_ID)
    assert "needs the *operator* role" in ack["text"]  # refused at the command already
    world.click("hvbot_bk_run", "feedfacefeedface", user=VIEWER_ID)
    assert any("operator" in t for t in world.responses(f"click-{VIEWER_ID}")) and not world.queue.get_job_ids()
    assert replication(world.lab, "hv-a1")[0] == "Replicating"


def test_bad_input_answers_clearly(world: World) -> None:
    assert "a backup window lasts at most 12 h, so `3d` is too long" in world.say(f"backup-window {VM} 3d")["text"]
    assert "not a duration such as 30m" in world.say(f"backup-window {VM} soon")["text"]
    assert "needs a VM and a DURATION" in world.say(f"backup-window {VM} 3 days")["text"]
    assert "Usage" in world.say("backup-check")["text"]
    assert "`--at` goes with a DURATION" in world.say(f"backup-window {VM} end --at 23:00")["text"]
    assert "is in the past" in world.say(f"backup-window {VM} 1h --at 2001-01-01T00:00")["text"]
