"""The monitor loop against a Redis it loses: an outage, a restart without data, and another monitor's lease.

In-process (the loop runs in a thread) against a redis-server the test owns and stops, with the client
`hvbot monitor` uses. Before, a Redis error in lease renewal ended the loop, and a lease that Redis merely lost
was taken for "another monitor took over".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from rq import Queue
from rq.serializers import JSONSerializer

from bot.cli.connections import monitor_redis
from bot.settings import Settings
from jobs.keys import MONITOR_LEASE_KEY
from jobs.monitor import heartbeat
from jobs.monitor.lease import LeaseState, MonitorLease
from jobs.monitor.loop import LeaseLost, Monitor
from jobs.monitor.state import AlertEngine
from tests.support.fixtures_redis import wait_until
from tests.support.redis_server import OwnRedis


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OwnRedis]:
    own = OwnRedis(tmp_path / "redis").start()
    yield own
    own.close()


class Running:
    """Monitor.run_forever in a thread, with what it raised."""

    def __init__(self, client: redis.Redis, lease: MonitorLease) -> None:
        self.monitor = Monitor(client, Queue("hvbot-outage-test", connection=client, serializer=JSONSerializer),
                               hosts=[], engine=AlertEngine(client), deliver=None, interval_s=60)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(lease,), daemon=True)
        self.thread.start()

    def _run(self, lease: MonitorLease) -> None:
        try:
            self.monitor.run_forever(lease, self.stop, tick_s=0.05, max_backoff_s=0.2)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(10)


def test_lease_tells_missing_from_taken(server: OwnRedis) -> None:
    client = server.client()
    mine, other = MonitorLease(client, ttl_s=30), MonitorLease(client, ttl_s=30)
    mine.acquire()
    assert mine.hold() is LeaseState.HELD
    client.delete(MONITOR_LEASE_KEY)
    assert mine.hold() is LeaseState.RETAKEN and other.hold() is LeaseState.TAKEN
    assert "pid" in other.other_holder()
    mine.release()
    assert other.hold() is LeaseState.RETAKEN


def test_the_loop_outlives_an_outage_and_a_restart_without_data(server: OwnRedis, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="hvbot.monitor")
    client = monitor_redis(Settings(redis_url=server.url))
    lease = MonitorLease(client, ttl_s=30)
    lease.acquire()
    run = Running(client, lease)
    try:
        probe = server.client()
        wait_until(lambda: heartbeat.read(probe), 20, "first heartbeat")
        server.stop(save=False)  # an outage: every command fails for a while
        wait_until(lambda: "Redis unreachable" in caplog.text, 30, "a failed round logged")
        assert run.thread.is_alive() and run.error is None
        server.start()  # back, empty: no lease, no heartbeat
        probe = server.client()
        wait_until(lambda: heartbeat.read(probe), 30, "heartbeat written again")
        assert probe.get(MONITOR_LEASE_KEY) and lease.hold() is LeaseState.HELD
        assert "monitoring resumed" in caplog.text
        swept = heartbeat.read(probe)
        assert swept is not None and swept.fresh(swept.at)

        server.restart(keep_data=False)  # a restart the client's retries ride out: the lease is taken back
        probe = server.client()
        wait_until(lambda: probe.get(MONITOR_LEASE_KEY), 30, "lease taken back")
        wait_until(lambda: "lease was missing" in caplog.text or "Redis restarted" in caplog.text, 30, "noticed")
        assert run.thread.is_alive() and run.error is None
    finally:
        run.halt()
    assert run.error is None


def test_the_loop_stops_when_another_monitor_holds_the_lease(server: OwnRedis) -> None:
    client = monitor_redis(Settings(redis_url=server.url))
    lease = MonitorLease(client, ttl_s=30)
    lease.acquire()
    run = Running(client, lease)
    try:
        server.client().set(MONITOR_LEASE_KEY, "feedface other-box pid 1 since then", px=30_000)
        run.thread.join(30)
        assert isinstance(run.error, LeaseLost) and "other-box pid 1" in str(run.error)
    finally:
        run.halt()
