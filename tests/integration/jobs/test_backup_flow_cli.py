"""`hvbot backup` as a subprocess against the lab (exit codes 0 / 75 / 1), and a worker started after a
window's end resuming it (the opener is gone)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from jobs.backup import operations as backup
from jobs.backup.settings import BackupSettings
from jobs.backup.window import WindowStatus
from jobs.hyperv.fleet import Fleet
from jobs.hyperv.hosts import load_inventory
from lab.fleet import Lab
from lab.fleet_file import default_fleet
from tests.support.fixtures_redis import TEST_QUEUE, test_redis_url

HVBOT = str(Path(sys.executable).parent / "hvbot")


@pytest.fixture
def env(make_lab: Callable[..., Lab], tmp_path: Path) -> tuple[Lab, dict[str, str]]:
    lab = make_lab(fleet=default_fleet())
    lab.fleet.apply_control("clock", {"freeze": True})
    inventory = lab.write_inventory(tmp_path / "inv.yml")
    values = {**os.environ, "HVBOT_INVENTORY": str(inventory), "REDIS_URL": test_redis_url(),
              "HVBOT_QUEUE": TEST_QUEUE, "HVBOT_LOG_JSON": "false", "HVBOT_BACKUP_RESUME_POLL_S": "0.05",
              "SLACK_BOT_TOKEN": "", "HVBOT_BACKUP_REPORT_CHANNEL": ""}
    return lab, values


def hvbot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HVBOT, *args], env=env, capture_output=True, text=True, timeout=120)


def state(lab: Lab, host: str) -> str:
    return str(lab.fleet.vm(host, "fw01").replication.state)  # type: ignore[union-attr]


def test_check_exit_codes(env: tuple[Lab, dict[str, str]], redis_conn: redis.Redis) -> None:
    lab, values = env
    ready = hvbot(values, "backup", "check", "fw01", "--json")
    assert ready.returncode == 0, ready.stderr
    assert json.loads(ready.stdout)["status"] == "ready" and ready.stderr.startswith("check fw01: ready:")
    lab.fleet.apply_control("backup_condition", {"host": "hv-b1", "vm": "fw01", "condition": "log_apply"})
    later = hvbot(values, "backup", "check", "fw01")
    assert later.returncode == 75, later.stderr
    assert "replication logs (.hrl) are being applied" in later.stderr and len(later.stderr.splitlines()) == 1
    lab.fleet.apply_control("backup_condition", {"host": "hv-b1", "vm": "fw01", "condition": "health_critical"})
    failed = hvbot(values, "backup", "check", "fw01", "--json")
    assert failed.returncode == 1 and json.loads(failed.stdout)["transient"] is False
    assert "replica health is Critical" in failed.stderr


def test_start_then_end(env: tuple[Lab, dict[str, str]], redis_conn: redis.Redis) -> None:
    lab, values = env
    started = hvbot(values, "backup", "start", "fw01", "--for", "2h", "--json")
    assert started.returncode == 0, started.stderr
    assert state(lab, "hv-a1") == "Suspended" and json.loads(started.stdout)["window"]["host"] == "hv-a1"
    again = hvbot(values, "backup", "start", "fw01", "--for", "2h")
    assert again.returncode == 1 and "already has an open backup window" in again.stderr
    ended = hvbot(values, "backup", "end", "fw01")
    assert ended.returncode == 0, ended.stderr
    assert state(lab, "hv-a1") == "Replicating"
    missing = hvbot(values, "backup", "end", "fw01")
    assert missing.returncode == 1 and "no open backup window" in missing.stderr


def test_worker_start_resumes_a_window_past_its_end(env: tuple[Lab, dict[str, str]], redis_conn: redis.Redis,
                                                    tmp_path: Path) -> None:
    lab, values = env
    store = backup.window_store(redis_conn, BackupSettings())
    now = datetime.now(UTC)
    with Fleet(load_inventory(values["HVBOT_INVENTORY"])) as fleet:
        # opened and paused by a process that was then killed; its end has passed meanwhile
        window = store.open("fw01", "hv-a1", "primary", now - timedelta(hours=1), now - timedelta(minutes=1), "U1")
        backup.pause(fleet, store, window, now)
    assert state(lab, "hv-a1") == "Suspended"
    worker = hvbot(values, "worker", "--burst", "--simple", "--name", f"bk-{os.getpid()}")
    assert worker.returncode == 0, worker.stderr
    assert state(lab, "hv-a1") == "Replicating"
    assert store.get("fw01").status is WindowStatus.RESUMED  # type: ignore[union-attr]
