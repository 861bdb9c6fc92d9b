"""The tour is a smoke test only if it can fail: with site B's replica host powered off before it starts, the
story cannot go as narrated, and the tour returns 1 naming the step where it stopped."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from bot.cli.demo import console_session
from bot.cli.demo_tour import STEPS, play_tour
from bot.settings import Settings
from jobs.hyperv import process_fleet
from lab.fleet import Lab
from tests.support.fixtures_redis import TEST_QUEUE


@pytest.mark.timeout(300)  # the tour waits out its 60 s answer timeout on purpose: 120 s is too close
def test_tour_returns_1_naming_the_step_that_did_not_behave(make_lab: Callable[..., Lab], tmp_path: Path,
                                                            redis_conn: redis.Redis,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    lab = make_lab()
    inventory = lab.write_inventory(tmp_path / "inventory.yml")
    monkeypatch.setenv("HVBOT_INVENTORY", str(inventory))  # restored after the test; the session sets it too
    process_fleet._fleet_cache.clear()
    lab.control("hv-b1", "power_loss", {})  # web01's replica host: no failover can run there
    settings = Settings(inventory=inventory, queue=f"{TEST_QUEUE}-tour", slack_signing_secret=None,
                        slack_app_token=None, demo_answer_timeout_seconds=60)
    out = io.StringIO()
    try:
        with console_session(settings, out, redis_conn=redis_conn, monitor=True) as console:
            code = play_tour(console)
    finally:
        process_fleet._fleet_cache.clear()
    text = out.getvalue()
    assert code == 1, text[-3000:]
    failed = text.split("TOUR FAILED at step ", 1)[1]
    number, _, rest = failed.partition(" ")
    assert 1 <= int(number) < len(STEPS) and rest.startswith(f"({STEPS[int(number) - 1].title}):")
    assert "Tour complete" not in text
