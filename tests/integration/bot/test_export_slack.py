"""checkpoint and export from Slack: confirm card → Run → a real RQ worker → the lab (pypsrp over HTTP) → one
Slack message with a paced text progress bar, a Cancel button, and the outcome. The lab clock is frozen; the
export job's pacing clock (jobs.backup.export_tasks.clock) reads it and moves it 1 s per poll, as in
tests/integration/jobs/test_export_flow.py, so pacing does not depend on the machine's speed."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from bot.adapters.fake_slack import FakeSlack
from jobs.backup import export_tasks as export_jobs
from jobs.hyperv import process_fleet
from lab.fleet import Lab
from lab.fleet_file import default_fleet
from tests.support.backup_slack_world import OPERATOR_ID, VIEWER_ID, World

UPDATE_S = 3
PERCENT = re.compile(r"\] +(\d+)%")


class LabClock:
    """Moves the lab clock 1 s each time the export job reads its pacing clock (once per poll), up to `stop_at`."""

    def __init__(self, lab: Lab, stop_at: int | None = None) -> None:
        self.lab, self.t, self.stop_at = lab, 0, stop_at

    def __call__(self) -> float:
        exports = self.lab.fleet.exports
        if exports and exports[-1].status == "Running" and (self.stop_at is None or self.t < self.stop_at):
            self.lab.fleet.apply_control("clock", {"advance_s": 1})
            self.t += 1
        return float(self.t)


@pytest.fixture
def world(make_lab: Callable[..., Lab], fake_slack: FakeSlack, redis_conn: redis.Redis, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    lab = make_lab(fleet=default_fleet())
    lab.fleet.apply_control("clock", {"freeze": True})
    lab.fleet.apply_control("export_timing", {"seconds": 10, "steps": 10})
    inventory = lab.write_inventory(tmp_path / "inventory.yml")
    monkeypatch.setenv("HVBOT_INVENTORY", str(inventory))
    monkeypatch.setenv("HVBOT_BACKUP_EXPORT_UPDATE_S", str(UPDATE_S))
    process_fleet._fleet_cache.clear()
    w = World(lab, fake_slack, redis_conn, inventory)
    yield w
    w.close()


def progress_percents(texts: list[str]) -> list[int]:
    return [int(m.group(1)) for t in texts if (m := PERCENT.search(t))]


def test_ten_step_export_paced_in_one_message(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_jobs, "clock", LabClock(world.lab))
    world.confirm(r"export web01 baseline D:\Exports")
    world.work()
    posts, updates = world.messages("export web01 / baseline")
    assert len(posts) == 1 and all(u.args["ts"] == posts[0].response["ts"] for u in updates)
    texts = [str(u.args["text"]) for u in updates]
    percents = progress_percents(texts)
    assert len(percents) >= 3, texts  # at least 3 progress updates of the same message
    assert len(percents) <= 10 // UPDATE_S + 2, texts  # paced: not one per step (10 steps)
    assert percents == sorted(percents) and percents[-1] == 100
    assert "hvbot_export_cancel" in str(updates[-2].args["blocks"])  # Cancel offered while it runs
    final = texts[-1]
    assert re.search(r"Exported web01 / baseline to D:\\Exports on hv-a1 in \d+ s", final), final
    assert "hvbot_export_cancel" not in str(updates[-1].args["blocks"])
    assert world.lab.fleet.exports[-1].status == "Completed"


def test_cancel_button_stops_the_export(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_jobs, "clock", LabClock(world.lab, stop_at=4))  # stalls at 40 %
    monkeypatch.setenv("HVBOT_BACKUP_EXPORT_TIMEOUT_S", "60")  # a failed click cannot hang the test for 4 h
    world.confirm(r"export web01 baseline D:\Exports")
    clicks: list[str] = []

    def press_cancel() -> None:  # Slack's side, while the worker (main thread: RQ needs its signals) runs
        running = world.fake.wait_for(lambda calls: [
            c for c in calls if c.method == "chat.update" and any(p > 0 for p in progress_percents(
                [str(c.args.get("text", ""))]))], 60)[0]
        blocks = running.args["blocks"]
        blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
        value = next(e["value"] for b in blocks if b.get("type") == "actions" for e in b["elements"]
                     if e["action_id"] == "hvbot_export_cancel")  # sealed: a one-use token
        assert re.search(r"\.ex[0-9a-f]{10}$", value), value
        world.click("hvbot_export_cancel", value, user=VIEWER_ID, message_ts=running.args["ts"])
        world.click("hvbot_export_cancel", value, message_ts=running.args["ts"])
        world.click("hvbot_export_cancel", value, message_ts=running.args["ts"])  # pressed again: already used
        clicks.append(value)

    clicker = threading.Thread(target=press_cancel, daemon=True)
    clicker.start()
    world.work()
    clicker.join(10)
    assert clicks, "Cancel was not clicked"
    assert any("operator" in t for t in world.responses(f"click-{VIEWER_ID}"))  # a viewer's click is refused
    answers = world.responses(f"click-{OPERATOR_ID}")
    assert sum("Cancelling the export" in t for t in answers) == 1, answers
    assert any("already used" in t for t in answers), answers
    final = world.texts("export web01 / baseline")[-1]
    assert "cancelled by <@U100> after" in final, final
    assert world.lab.fleet.exports[-1].status == "Cancelled" and world.lab.fleet.exports[-1].percent < 100


def test_injected_failure_shows_the_powershell_error(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_jobs, "clock", LabClock(world.lab))
    world.lab.fleet.apply_control("fail_next", {"host": "hv-a1", "cmdlet": "Export-VMSnapshot", "after_steps": 3})
    world.confirm(r"export web01 baseline \\fs01\exports\web01")
    world.work()
    final = world.texts("export web01 / baseline")[-1]
    assert ":x:" in final and "There is not enough space on the disk" in final, final


def test_checkpoint_then_bad_paths_refused(world: World) -> None:
    world.confirm('checkpoint web01 "before patch"')
    world.work()
    assert "created checkpoint 'before patch' on hv-a1" in world.texts("checkpoint web01")[-1]
    assert any(cp.name == "before patch" for cp in world.lab.fleet.vm("hv-a1", "web01").checkpoints)
    assert "use backslashes" in world.say("export web01 baseline D:/Exports")["text"]
    assert "not an absolute path" in world.say(r"export web01 baseline Exports\x")["text"]
    assert "Usage" in world.say("export web01 baseline")["text"]
