"""`hvbot check-config` against the lab and the fake Slack Web API: a readable report and the exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.adapters.fake_slack import FakeSlack
from tests.support.fixtures_redis import test_redis_url
from tests.support.fixtures_slack import BOT_TOKEN, SIGNING_SECRET, free_port


def _check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("hvbot")
    return subprocess.run([str(exe), "check-config"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_all_ok_against_lab_and_slack(fake_slack: FakeSlack, lab_inventory_path: Path) -> None:
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake_slack.api_url,
           "REDIS_URL": test_redis_url(), "HVBOT_INVENTORY": str(lab_inventory_path)}
    result = _check(env)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert any(line.startswith("ok   slack: auth.test ok") for line in lines)
    assert len([line for line in lines if line.startswith("ok   host hv-")]) == 4
    assert BOT_TOKEN not in result.stdout + result.stderr


def test_failures_are_one_line_each_and_exit_1(fake_slack: FakeSlack, lab_inventory_path: Path) -> None:
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": fake_slack.api_url,
           "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "HVBOT_INVENTORY": str(lab_inventory_path)}
    result = _check(env)
    assert result.returncode == 1
    assert "FAIL redis:" in result.stdout and "FAIL slack: HTTP mode needs SLACK_SIGNING_SECRET" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
