"""The scrape-time gauges read from Redis (jobs.state_metrics): the last sweep, alert records written by the
real alert engine, approvals, RQ queues and workers, the monitor heartbeat; and only `hvbot_redis_up 0` when Redis
does not answer."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta

import redis
from prometheus_client import CollectorRegistry
from rq import Queue

from jobs import keys
from jobs.monitor import heartbeat
from jobs.monitor.rules import HostObservation, ReplicaObservation
from jobs.monitor.state import AlertEngine
from jobs.monitor.sweep import store_last
from jobs.state_metrics import RedisStateCollector

NOW = datetime.now(UTC)


def _vm(name: str, health: str, state: str = "Replicating", host: str = "hv-a1") -> ReplicaObservation:
    return ReplicaObservation(host=host, site="site-a", vm=name, mode="Primary", state=state, health=health,
                              frequency_sec=300, last_replication_time=NOW - timedelta(seconds=30),
                              successful_count=100, missed_count=0)


def _registry(client: redis.Redis, queues: list[str]) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(RedisStateCollector(client, queues))
    return registry


def test_gauges_from_the_last_sweep_alerts_approvals_queues_and_heartbeat(redis_conn: redis.Redis) -> None:
    a1 = [HostObservation("hv-a1", "site-a", reachable=True), _vm("db-1", "Critical"), _vm("db-2", "Normal"),
          _vm("web-1", "Normal"), _vm("web-2", "Warning", state="Suspended")]
    b1 = [HostObservation("hv-b1", "site-b", reachable=False, error="hv-b1 is unreachable")]
    AlertEngine(redis_conn).ingest(a1, NOW)
    store_last(redis_conn, {"hv-a1": a1}, NOW)
    store_last(redis_conn, {"hv-b1": b1}, NOW)
    redis_conn.zadd(keys.approvals_pending_key(), {"ap-live": time.time() + 600, "ap-overdue": time.time() - 5})
    heartbeat.write(redis_conn, heartbeat.Heartbeat(at=1000.0, swept_at=990.0, interval_s=60, tick_s=5,
                                                    holder="box pid 7", hosts=2))
    Queue("metrics-busy", connection=redis_conn).enqueue("os.getcwd")

    registry = _registry(redis_conn, ["metrics-idle"])
    value = registry.get_sample_value
    assert value("hvbot_redis_up") == 1
    assert value("hvbot_vms", {"health": "Normal", "state": "Replicating"}) == 2
    assert value("hvbot_vms", {"health": "Critical", "state": "Replicating"}) == 1
    assert value("hvbot_vms", {"health": "Warning", "state": "Suspended"}) == 1
    assert value("hvbot_hosts_swept") == 2 and value("hvbot_hosts_unreachable") == 1
    assert value("hvbot_alerts_firing", {"severity": "critical"}) >= 1
    assert value("hvbot_alerts_firing", {"severity": "warning"}) is not None  # every severity, even at zero
    assert value("hvbot_approvals_pending") == 1  # the overdue one waits only for its expiry chore
    assert value("hvbot_queue_depth", {"queue": "metrics-busy"}) == 1
    assert value("hvbot_queue_depth", {"queue": "metrics-idle"}) == 0
    assert value("hvbot_rq_workers", {"queue": "metrics-idle"}) == 0
    assert value("hvbot_monitor_last_sweep_timestamp_seconds") == 990.0
    assert value("hvbot_monitor_stale_after_seconds") == 2 * 60 + 3 * 5


def test_an_empty_redis_exports_zeros_and_no_heartbeat(redis_conn: redis.Redis) -> None:
    registry = _registry(redis_conn, ["metrics-idle"])
    assert registry.get_sample_value("hvbot_hosts_swept") == 0
    assert registry.get_sample_value("hvbot_alerts_firing", {"severity": "critical"}) == 0
    assert registry.get_sample_value("hvbot_monitor_last_sweep_timestamp_seconds") is None  # absent() alerts


def test_redis_down_exports_only_redis_up_zero() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        down = redis.Redis(port=closed.getsockname()[1], socket_connect_timeout=1)
        families = list(_registry(down, ["metrics-idle"]).collect())
    assert [(f.name, [s.value for s in f.samples]) for f in families] == [("hvbot_redis_up", [0])]
