"""Socket Mode: `hvbot serve` with SLACK_APP_TOKEN connects to a local Socket Mode server, which delivers a
slash-command envelope; the ack comes back on the socket and the worker's answer reaches the fake Web API."""

from __future__ import annotations

import json
import re
from pathlib import Path

import redis

from bot.adapters.fake_slack import FakeSlack
from tests.support.fixtures_redis import TEST_QUEUE, test_redis_url, wait_until
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


def test_socket_mode_refuses_malformed_envelopes_and_drops_retries(socket_mode_server: SocketModeServer,
                                                                   fake_slack: FakeSlack, redis_conn: redis.Redis,
                                                                   lab_inventory_path: Path) -> None:
    """The same shape check as HTTP, before Bolt builds a request; Slack's retries are acked and run nothing.
    No worker runs: the queue's length counts what was started."""
    fake_slack.socket_mode_url = socket_mode_server.url
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": "xapp-test-not-real", "SLACK_API_URL": fake_slack.api_url,
           "REDIS_URL": test_redis_url(), "HVBOT_INVENTORY": str(lab_inventory_path), "HVBOT_LOG_JSON": "false",
           "HVBOT_QUEUE": TEST_QUEUE}
    server = HvbotProcess(["serve", "--port", str(free_port()), "--host", "127.0.0.1"], env)
    command = {"command": "/hyperv", "text": "vms", "user_id": "U100", "channel_id": "C100", "team_id": "T0HVBOT",
               "api_app_id": "A0HVBOT", "trigger_id": "1.2.3", "response_url": fake_slack.response_url("sm")}
    click = {"type": "block_actions", "user": "U100", "actions": [], "channel": {"id": "C100"},
             "response_url": fake_slack.response_url("sm-click")}
    try:
        socket_mode_server.wait_connected(timeout=30)
        envelopes = {
            "bad-text": {"type": "slash_commands", "payload": {**command, "text": ["vms"]}},
            "bad-user": {"type": "slash_commands", "payload": {**command, "user_id": 5}},
            "bad-click": {"type": "interactive", "payload": click},
            "nested": {"type": "interactive", "payload": {**click, "authorizations": 5}},
            "retry": {"type": "slash_commands", "payload": command, "retry_attempt": 1, "retry_reason": "timeout"},
        }
        for envelope_id, envelope in envelopes.items():
            socket_mode_server.deliver({"envelope_id": envelope_id, "accepts_response_payload": True, **envelope})
        acks = {envelope_id: socket_mode_server.wait_ack(envelope_id) for envelope_id in envelopes}
        assert "could not read this request" in json.dumps(acks["bad-text"]) and "text" in json.dumps(acks["bad-text"])
        assert "user_id" in json.dumps(acks["bad-user"])
        assert not acks["bad-click"].get("payload") and not acks["retry"].get("payload")
        socket_mode_server.deliver({"envelope_id": "good", "type": "slash_commands", "payload": command,
                                    "accepts_response_payload": True, "retry_attempt": 0})
        assert "Working on" in json.dumps(socket_mode_server.wait_ack("good"))  # a first delivery says retry 0
        wait_until(lambda: redis_conn.llen(f"rq:queue:{TEST_QUEUE}") >= 1, 15, "the good command queued")
        assert redis_conn.llen(f"rq:queue:{TEST_QUEUE}") == 1  # the retry queued nothing
    finally:
        server.stop()
    assert [line for line in server.lines if "Traceback" in line] == []
