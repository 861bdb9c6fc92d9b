"""`hvbot monitor --standby`: a second monitor waits while the first holds the lease, and takes over once the
first is SIGKILLed and its lease lapses (one lease period). Real processes, their own Redis; waits poll with a
generous deadline, never sleep."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any


from bot.adapters.fake_slack import FakeSlack
from jobs.keys import MONITOR_HEARTBEAT_KEY, MONITOR_LEASE_KEY
from lab.fleet_file import generated_fleet
from tests.support.fixtures_redis import wait_until
from tests.support.fixtures_slack import HvbotProcess
from tests.support.redis_server import OwnRedis

LEASE_S = "4"  # HVBOT_MONITOR_LEASE_SECONDS: short, so the test waits seconds, not the default 30


def _holder(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw or "")


def test_a_standby_monitor_takes_over_when_the_first_is_killed(make_lab: Any, own_redis: OwnRedis,
                                                               tmp_path: Path) -> None:
    lab = make_lab(fleet=generated_fleet(2, 1))
    inventory = lab.write_inventory(tmp_path / "inventory.yml")
    client = own_redis.client()
    with FakeSlack() as slack:
        env = {"REDIS_URL": own_redis.url, "HVBOT_INVENTORY": str(inventory), "SLACK_API_URL": slack.api_url,
               "SLACK_BOT_TOKEN": "xoxb-test", "HVBOT_QUEUE": "hvbot-standby-test", "HVBOT_LOG_JSON": "false",
               "HVBOT_MONITOR_LEASE_SECONDS": LEASE_S, "HVBOT_APPROVAL_SECRET": "test-approval-secret-0123"}
        first = HvbotProcess(["monitor", "--tick", "0.5"], env, ready_line="hvbot monitor:")
        standby: HvbotProcess | None = None
        try:
            first.wait_ready(60)
            standby = HvbotProcess(["monitor", "--tick", "0.5", "--standby"], env, ready_line="hvbot monitor:")
            wait_until(lambda: any("(standby)" in line for line in standby.lines), 60, "the standby waits")
            assert f"pid {first.proc.pid} " in _holder(client.get(MONITOR_LEASE_KEY))
            beat = json.loads(client.get(MONITOR_HEARTBEAT_KEY) or "{}")
            assert f"pid {first.proc.pid} " in beat["holder"], "only the first monitor sweeps"
            assert standby.proc.poll() is None and not any(line.startswith("hvbot monitor:")
                                                           for line in standby.lines)

            os.killpg(first.proc.pid, signal.SIGKILL)  # no release: the lease has to lapse
            first.proc.wait(30)
            standby.wait_ready(120)  # generous: the lease lapses after LEASE_S seconds, the standby polls each tick
            wait_until(lambda: f"pid {standby.proc.pid} " in _holder(client.get(MONITOR_LEASE_KEY)), 60,
                       "the standby holds the lease")
            wait_until(lambda: f"pid {standby.proc.pid} " in json.loads(client.get(MONITOR_HEARTBEAT_KEY))["holder"],
                       60, "the standby writes the heartbeat: it is the monitor now")
            assert standby.proc.poll() is None
        finally:
            first.stop()
            if standby is not None:
                standby.stop()
