"""The monitor's health as operators see it: `hvbot monitor --health` (exit 0 fresh, 1 otherwise),
`hvbot check-config` (monitor heartbeat and registered workers) and the `/hyperv replication` answer."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import redis

from bot.adapters.fake_slack import FakeSlack
from jobs.monitor import heartbeat
from jobs.workers import HvbotSimpleWorker
from tests.integration.bot.test_monitor_chat import _app, _say
from tests.integration.bot.test_monitor_sweep import r, slack, world  # noqa: F401  # fixtures
from tests.support.fixtures_redis import test_redis_url
from tests.support.fixtures_slack import BOT_TOKEN, SIGNING_SECRET, free_port

QUEUE = "hvbot-monitor-health-test"


def _beat(age_s: float) -> heartbeat.Heartbeat:
    at = time.time() - age_s
    return heartbeat.Heartbeat(at=at, swept_at=at, interval_s=60, tick_s=5, holder="box pid 7", hosts=2)


def _hvbot(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("hvbot")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120, env={**os.environ, **env})


def test_health_flag_exits_0_only_while_the_heartbeat_is_fresh(redis_conn: redis.Redis) -> None:
    env = {"REDIS_URL": test_redis_url()}
    missing = _hvbot(["monitor", "--health"], env)
    assert missing.returncode == 1 and "no monitor heartbeat" in missing.stdout
    heartbeat.write(redis_conn, _beat(40))
    fresh = _hvbot(["monitor", "--health"], env)
    assert fresh.returncode == 0 and re.match(r"healthy: monitor last swept \d+ s ago", fresh.stdout), fresh.stdout
    heartbeat.write(redis_conn, _beat(600))
    stale = _hvbot(["monitor", "--health"], env)
    assert stale.returncode == 1 and "unhealthy: monitor has not swept for 10 min" in stale.stdout
    down = _hvbot(["monitor", "--health"], {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    assert down.returncode == 1 and "Redis unreachable" in down.stdout and "Traceback" not in down.stderr


def test_check_config_shows_the_monitor_and_the_workers(redis_conn: redis.Redis, fake_slack: FakeSlack,
                                                        lab_inventory_path: Path) -> None:
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake_slack.api_url,
           "REDIS_URL": test_redis_url(), "HVBOT_INVENTORY": str(lab_inventory_path), "HVBOT_QUEUE": QUEUE}
    first = _hvbot(["check-config"], env)
    assert first.returncode == 0, first.stdout
    assert "info monitor: no monitor heartbeat" in first.stdout and "info workers: none registered" in first.stdout

    heartbeat.write(redis_conn, _beat(40))
    HvbotSimpleWorker([QUEUE], connection=redis_conn, name="check-config-test").register_birth()
    running = _hvbot(["check-config"], env)
    assert running.returncode == 0, running.stdout
    assert re.search(r"ok   monitor: monitor last swept \d+ s ago", running.stdout)
    assert f"ok   workers: 1 registered for queue {QUEUE}" in running.stdout

    heartbeat.write(redis_conn, _beat(600))
    stale = _hvbot(["check-config"], env)
    assert stale.returncode == 1 and "FAIL monitor: monitor has not swept for 10 min" in stale.stdout


def test_replication_answer_says_whether_the_monitor_still_sweeps(world) -> None:  # noqa: F811
    w = world(2, 1)
    app = _app(w)
    assert "no monitor heartbeat" in _say(app, "replication", user="U200")
    heartbeat.write(w.r, _beat(40))
    assert re.search(r"monitor last swept \d+ s ago", _say(app, "replication", user="U200"))
    heartbeat.write(w.r, _beat(600))
    assert "monitor has not swept for 10 min" in _say(app, "replication", user="U200")
