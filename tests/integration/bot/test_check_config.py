"""`hvbot check-config` against the lab and the fake Slack Web API: a readable report and the exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.adapters.fake_slack import FakeSlack
from tests.support.fixtures_redis import test_redis_url
from tests.support.fixtures_slack import BOT_TOKEN, SIGNING_SECRET, free_port
from tests.support.redis_server import OwnRedis


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


def test_warns_when_redis_keeps_nothing_on_disk(fake_slack: FakeSlack, lab_inventory_path: Path) -> None:
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake_slack.api_url,
           "REDIS_URL": test_redis_url(), "HVBOT_INVENTORY": str(lab_inventory_path)}
    result = _check(env)  # the tests' Redis runs with --save '' --appendonly no
    warning = next(line for line in result.stdout.splitlines() if line.startswith("WARN redis persistence:"))
    assert "appendonly yes" in warning and "approvals" in warning
    assert result.returncode == 0, "a warning does not fail the check"


def test_durable_redis_behind_a_password_file_passes(fake_slack: FakeSlack, lab_inventory_path: Path,
                                                    tmp_path: Path) -> None:
    server = OwnRedis(tmp_path / "redis").start()
    try:
        password = "redis-pass-" + "7" * 20
        admin = server.client()
        admin.config_set("appendonly", "yes")
        admin.config_set("requirepass", password)
        (tmp_path / "redis-password").write_text(password + "\n")
        env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
               "SLACK_API_URL": fake_slack.api_url, "REDIS_URL": server.url,
               "HVBOT_REDIS_PASSWORD_FILE": str(tmp_path / "redis-password"),
               "HVBOT_INVENTORY": str(lab_inventory_path)}
        result = _check(env)
        assert "ok   redis persistence: appendonly yes" in result.stdout, result.stdout
        assert result.returncode == 0, result.stdout
        assert password not in result.stdout + result.stderr
    finally:  # SHUTDOWN needs the password now: the test stops its own server by signal
        if server.proc is not None:
            server.proc.kill()
            server.proc.wait(10)
