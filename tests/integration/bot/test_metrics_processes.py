"""`curl /metrics` on real processes: `hvbot serve` (HTTP and Socket Mode), a forking `hvbot worker` and
`hvbot monitor`, against the lab and the test's Redis, after a few commands and sweeps. Every family shows live
values, and every `hvbot_*` name the Grafana dashboard and the alert rules use is exported by one of them.
Then Socket Mode readiness: /readyz follows the socket through a dropped connection and an outage."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import redis
from rq import Queue
from rq.serializers import JSONSerializer

from bot.adapters.fake_slack import FakeSlack
from jobs.monitor.sweep import run_host_sweep
from jobs.queue import enqueue
from lab.fleet_file import generated_fleet
from tests.support.fixtures_redis import TEST_QUEUE, test_redis_url, wait_until
from tests.support.fixtures_slack import (
    BOT_TOKEN,
    SIGNING_SECRET,
    HvbotProcess,
    SocketModeServer,
    free_port,
    get,
    post,
    signed_headers,
    slash_body,
)
from tests.support.scrape import Scrape, missing_names, scrape

DEADLINE_S = 90  # one wait for sweeps and jobs through real processes on a loaded two-core machine


def _env(fake: FakeSlack, inventory: Path, **more: str) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": fake.api_url, "REDIS_URL": test_redis_url(),
            "HVBOT_INVENTORY": str(inventory), "HVBOT_QUEUE": TEST_QUEUE, "HVBOT_LOG_JSON": "false",
            "HVBOT_CHANNEL_POST_INTERVAL_SECONDS": "0", "HVBOT_ALERT_GROUP_WAIT_SECONDS": "0",
            "HVBOT_APPROVAL_SECRET": "test-approval-secret-0123", "HVBOT_METRICS_BIND": "127.0.0.1", **more}


def _scraped_until(port: int, check: Callable[[Scrape], bool], what: str) -> Scrape:
    """Scrape until `check` holds (a live value arrived), or fail with the last scrape's hvbot_ samples."""
    last: list[Scrape] = []

    def arrived() -> Scrape | None:
        if get(port, "/healthz")[0] != 200:
            return None
        last[:] = [scrape(port)]
        return last[0] if check(last[0]) else None

    try:
        return cast(Scrape, wait_until(arrived, DEADLINE_S, what))
    except TimeoutError:
        shown = [s for s in (last[0].samples if last else ()) if s[0].startswith("hvbot_")]
        raise AssertionError(f"{what}: not seen within {DEADLINE_S} s; last scrape: {shown}") from None


def _at_least(value: float | None, minimum: float) -> bool:
    return value is not None and value >= minimum


@pytest.mark.timeout(600)  # four processes, several waits of up to DEADLINE_S each
def test_live_metrics_of_serve_worker_and_monitor_cover_the_dashboard_and_rules(
        make_lab: Any, tmp_path: Path, fake_slack: FakeSlack, socket_mode_server: SocketModeServer,
        redis_conn: redis.Redis) -> None:
    lab = make_lab(fleet=generated_fleet(3, 2))
    inventory = lab.write_inventory(tmp_path / "inventory.yml")
    lab.control("hv-001", "replication", {"vm": "vm-001-0001", "health": "Critical"})
    lab.control("hv-002", "down", {})
    fake_slack.socket_mode_url = socket_mode_server.url
    fake_slack.fail_next("chat.postMessage", 1, status=429, retry_after=1)  # the first alert post
    http_port, socket_port, worker_port, monitor_port = free_port(), free_port(), free_port(), free_port()
    env = _env(fake_slack, inventory)
    processes = [
        HvbotProcess(["serve", "--port", str(http_port), "--host", "127.0.0.1"],
                     {**env, "SLACK_SIGNING_SECRET": SIGNING_SECRET}, "listening on"),
        HvbotProcess(["serve", "--port", str(socket_port), "--host", "127.0.0.1"],
                     {**env, "SLACK_APP_TOKEN": "xapp-test-not-real"}),
        HvbotProcess(["worker", "--name", f"metrics-{worker_port}"], {**env, "HVBOT_METRICS_PORT": str(worker_port)}),
        HvbotProcess(["monitor", "--tick", "0.5"], {**env, "HVBOT_METRICS_PORT": str(monitor_port)},
                     "hvbot monitor:"),
    ]
    try:
        processes[0].wait_ready(timeout=DEADLINE_S)
        for text in ("vms", "vms --host hv-001", "no-such-verb"):
            body = slash_body(text, response_url=fake_slack.response_url("metrics"))
            assert post(http_port, body, signed_headers(body))[0] == 200
        socket_mode_server.wait_connected(timeout=30)
        socket_mode_server.deliver({"envelope_id": "m-1", "type": "slash_commands", "accepts_response_payload": True,
                                    "payload": {"command": "/hyperv", "text": "help", "user_id": "U100",
                                                "channel_id": "C100", "team_id": "T0HVBOT", "api_app_id": "A0HVBOT",
                                                "trigger_id": "1.2.3", "response_url": fake_slack.response_url("sm")}})
        socket_mode_server.wait_ack("m-1")

        serve = scrape(http_port)
        assert _at_least(serve.value("hvbot_commands_total", verb="vms", outcome="ok"), 2)
        assert _at_least(serve.value("hvbot_commands_total", verb="unknown", outcome="invalid"), 1)
        assert _at_least(serve.value("hvbot_ack_seconds_count", transport="http"), 3)
        assert _at_least(serve.value("hvbot_slack_api_calls_total", method="auth.test", outcome="ok"), 1)

        socket = _scraped_until(socket_port, lambda s: s.value("hvbot_socket_mode_connected") == 1, "socket up")
        assert _at_least(socket.value("hvbot_ack_seconds_count", transport="socket_mode"), 1)
        assert _at_least(socket.value("hvbot_commands_total", verb="help", outcome="ok"), 1)
        assert socket.value("hvbot_socket_mode_reconnects_total") == 0

        worker = _scraped_until(worker_port, lambda s: (
            _at_least(s.value("hvbot_jobs_total", kind="run_lookup", outcome="ok"), 2)
            # the monitor sweeps its three hosts as one job of several hosts, a work horse per sweep
            and _at_least(s.value("hvbot_jobs_total", kind="run_hosts_sweep", outcome="ok"), 2)
            and _at_least(s.value("hvbot_host_calls_total", host="hv-002", outcome="unreachable"), 1)),
            "the worker's lookups and sweeps, each in its own work horse")
        assert _at_least(worker.value("hvbot_job_duration_seconds_count", kind="run_lookup"), 2)
        assert _at_least(worker.value("hvbot_host_calls_total", host="hv-001", outcome="ok"), 2)
        assert _at_least(worker.value("hvbot_host_call_seconds_count", host="hv-000"), 2)
        # each work horse opens its own sessions: the down host's failed opens are host calls too
        assert _at_least(worker.value("hvbot_host_calls_total", host="hv-002", call="open", outcome="unreachable"), 1)

        monitor = _scraped_until(monitor_port, lambda s: (
            s.value("hvbot_hosts_swept") == 3 and _at_least(s.value("hvbot_alerts_firing", severity="critical"), 1)),
            "the last sweep and its alert in Redis")
        assert monitor.value("hvbot_redis_up") == 1
        assert _at_least(monitor.value("hvbot_vms", health="Critical"), 1)
        assert _at_least(monitor.value("hvbot_vms", health="Normal"), 1)
        assert monitor.value("hvbot_hosts_unreachable") == 1
        assert monitor.value("hvbot_rq_workers", queue=TEST_QUEUE) == 1
        assert monitor.value("hvbot_queue_depth", queue=TEST_QUEUE) is not None
        assert monitor.value("hvbot_approvals_pending") == 0
        assert abs(time.time() - (monitor.value("hvbot_monitor_last_sweep_timestamp_seconds") or 0)) < 600

        posted = _scraped_until(worker_port, lambda s: _at_least(
            s.value("hvbot_slack_api_calls_total", method="chat.postMessage", outcome="ok"), 1), "the alert posted")
        rate_limited = sum(s.value("hvbot_slack_rate_limited_total", method="chat.postMessage") or 0
                           for s in (posted, scrape(monitor_port)))
        assert rate_limited >= 1  # the 429 the fake Slack answered to the first alert post

        exported = set().union(*(s.names() for s in (serve, socket, posted, scrape(monitor_port))))
        assert missing_names(exported) == {}
    finally:
        for process in processes:
            process.stop()
    for process in processes:
        assert [line for line in process.lines if "Traceback" in line] == [], "".join(process.lines[-40:])


@pytest.mark.timeout(600)
def test_socket_mode_readyz_follows_the_socket_and_reconnects_are_counted(
        lab_inventory_path: Path, fake_slack: FakeSlack, socket_mode_server: SocketModeServer,
        redis_conn: redis.Redis) -> None:
    fake_slack.socket_mode_url = socket_mode_server.url
    port = free_port()
    server = HvbotProcess(["serve", "--port", str(port), "--host", "127.0.0.1"],
                          _env(fake_slack, lab_inventory_path, SLACK_APP_TOKEN="xapp-test-not-real"))
    try:
        socket_mode_server.wait_connected(timeout=30)
        wait_until(lambda: get(port, "/readyz")[0] == 200, DEADLINE_S, "ready once connected")

        socket_mode_server.drop()  # Slack drops the connection: slack_sdk opens a new one at once
        wait_until(lambda: socket_mode_server.connections() == 2, DEADLINE_S, "a new connection")
        counted = _scraped_until(port, lambda s: s.value("hvbot_socket_mode_reconnects_total") == 1, "reconnect")
        assert counted.value("hvbot_socket_mode_connected") == 1

        with socket.socket() as closed:  # a port nothing listens on: the outage
            closed.bind(("127.0.0.1", 0))
            fake_slack.socket_mode_url = f"ws://127.0.0.1:{closed.getsockname()[1]}/link"
            socket_mode_server.drop()
            wait_until(lambda: get(port, "/readyz")[0] == 503, DEADLINE_S, "not ready while disconnected")
            status, text = get(port, "/readyz")
            assert status == 503 and "Socket Mode is not connected" in text
            assert scrape(port).value("hvbot_socket_mode_connected") == 0

        fake_slack.socket_mode_url = socket_mode_server.url  # Slack is back: slack_sdk's monitor reconnects
        wait_until(lambda: get(port, "/readyz")[0] == 200, DEADLINE_S, "ready again after reconnecting")
        _scraped_until(port, lambda s: s.value("hvbot_socket_mode_reconnects_total") == 2, "the second reconnect")
        assert socket_mode_server.connections() == 3
        socket_mode_server.deliver({"envelope_id": "after", "type": "slash_commands", "accepts_response_payload": True,
                                    "payload": {"command": "/hyperv", "text": "help", "user_id": "U100",
                                                "channel_id": "C100", "team_id": "T0HVBOT", "api_app_id": "A0HVBOT",
                                                "trigger_id": "1.2.3", "response_url": fake_slack.response_url("sm")}})
        assert socket_mode_server.wait_ack("after")["payload"]  # the new socket carries requests again
    finally:
        server.stop()


@pytest.mark.timeout(600)
def test_simple_worker_exports_its_jobs_from_its_own_registry(
        lab_inventory_path: Path, fake_slack: FakeSlack, redis_conn: redis.Redis) -> None:
    """`hvbot worker --simple` (the compose file's worker) runs jobs in-process: no multiprocess directory, and the
    default registry, so prometheus-client's process families come too."""
    port = free_port()
    worker = HvbotProcess(["worker", "--simple", "--no-warm", "--name", f"metrics-simple-{port}"],
                          _env(fake_slack, lab_inventory_path, HVBOT_METRICS_PORT=str(port)))
    try:
        queue = Queue(TEST_QUEUE, connection=redis_conn, serializer=JSONSerializer)
        enqueue(queue, run_host_sweep, {"host": "hv-a1"}, description="sweep hv-a1 (metrics test)")
        scraped = _scraped_until(port, lambda s: _at_least(
            s.value("hvbot_jobs_total", kind="run_host_sweep", outcome="ok"), 1), "the sweep run in-process")
        assert _at_least(scraped.value("hvbot_host_calls_total", host="hv-a1", outcome="ok"), 1)
        assert scraped.value("process_cpu_seconds_total") is not None
        assert get(port, "/readyz") == (200, "ready")
    finally:
        worker.stop()
