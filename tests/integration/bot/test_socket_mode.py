"""Socket Mode: `hvbot serve` with SLACK_APP_TOKEN connects to a local Socket Mode server, which delivers a
slash-command envelope; the ack comes back on the socket and the worker's answer reaches the fake Web API."""

from __future__ import annotations

import json
import re
from pathlib import Path

import redis

from bot.adapters.fake_slack import FakeSlack
from tests.support.fixtures_redis import TEST_QUEUE, test_redis_url
from tests.support.fixtures_slack import BOT_TOKEN, HvbotProcess, SocketModeServer, free_port


def test_slash_command_over_socket_mode(socket_mode_server: SocketModeServer, fake_slack: FakeSlack,
                                        redis_conn: redis.Redis, lab_inventory_path: Path) -> None:
    fake_slack.socket_mode_url = socket_mode_server.url
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": "xapp-test-not-real", "SLACK_API_URL": fake_slack.api_url,
           "REDIS_URL": test_redis_url(), "HVBOT_INVENTORY": str(lab_inventory_path), "HVBOT_LOG_JSON": "false", "HVBOT_QUEUE": TEST_QUEUE}
    server = HvbotProcess(["serve", "--port", str(free_port()), "--host", "127.0.0.1"], env)
    worker = HvbotProcess(["worker", "--name", "test-socket-mode"], env)
    try:
        socket_mode_server.wait_connected(timeout=30)
        assert fake_slack.calls_to("apps.connections.open")
        socket_mode_server.deliver({
            "envelope_id": "env-1", "type": "slash_commands", "accepts_response_payload": True,
            "payload": {"command": "/hyperv", "text": "ips 10.0.4.17", "user_id": "U100", "channel_id": "C100",
                        "team_id": "T0HVBOT", "api_app_id": "A0HVBOT", "trigger_id": "1.2.3",
                        "response_url": fake_slack.response_url("socket")},
        })
        ack = socket_mode_server.wait_ack("env-1", timeout=15)
        assert "Working on" in json.dumps(ack["payload"])
        job_id = re.search(r"job (hv[0-9a-f]+)", json.dumps(ack["payload"])).group(1)  # type: ignore[union-attr]
        answer = fake_slack.wait_for(lambda calls: [c for c in calls if c.method == "response_url"
                                                    and f"job {job_id}" in json.dumps(c.args)], timeout=60)[0]
        assert "10.0.4.17" in json.dumps(answer.args["blocks"])
    finally:
        server.stop()
        worker.stop()
