"""`hvbot monitor` and `hvbot worker` as real processes: a Critical VM in the lab becomes one alert in the on-call
channel of the fake Slack, a second monitor refuses to start, and the first frees its lease when stopped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lab.fleet_file import generated_fleet
from tests.integration.bot.test_monitor_sweep import BurstySlack, _db9_url, _text, r  # noqa: F401  # fixture
from tests.support.fixtures_redis import wait_until
from tests.support.fixtures_slack import HvbotProcess

QUEUE = "hvbot-monitor-process-test"


def test_monitor_and_worker_processes_post_one_alert_and_a_second_monitor_refuses(r, make_lab, tmp_path):  # noqa: F811
    lab = make_lab(fleet=generated_fleet(2, 2))
    inventory = lab.write_inventory(Path(tmp_path) / "inventory.yml")
    lab.control("hv-001", "replication", {"vm": "vm-001-0001", "health": "Critical"})
    with BurstySlack() as slack:
        env = {"REDIS_URL": _db9_url(), "HVBOT_INVENTORY": str(inventory), "SLACK_API_URL": slack.api_url,
               "SLACK_BOT_TOKEN": "xoxb-test", "HVBOT_QUEUE": QUEUE, "HVBOT_ALERT_GROUP_WAIT_SECONDS": "0",
               "HVBOT_ALERT_CRITICAL_CHANNEL": "#oncall", "HVBOT_APPROVAL_SECRET": "test-approval-secret-0123",
               "HVBOT_LOG_JSON": "false"}
        worker = HvbotProcess(["worker", "--simple", "--name", "monitor-process-test"], env)
        monitor = HvbotProcess(["monitor", "--tick", "0.5"], env, ready_line="hvbot monitor:")
        try:
            monitor.wait_ready()
            posts = slack.wait_for(lambda calls: [c for c in calls if c.method == "chat.postMessage"
                                                  and c.status == 200], 60)
            assert posts[0].args["channel"] == "#oncall" and "vm-001-0001" in _text(posts[0])
            second = subprocess.run([str(Path(sys.executable).with_name("hvbot")), "monitor"], env={**env},
                                    capture_output=True, text=True, timeout=60)
            assert second.returncode != 0 and "Another hvbot monitor is already running" in second.stderr
        finally:
            monitor.stop()
            worker.stop()
        wait_until(lambda: not r.exists("hvbot:monitor:lease"), 10, "lease released on SIGTERM")
        assert len([c for c in slack.calls if c.method == "chat.postMessage" and c.status == 200]) == 1
