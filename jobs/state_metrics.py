"""Gauges read from Redis at scrape time: queues, workers, the last sweep, alerts, approvals, the monitor.

Nothing here is kept in process memory: every scrape reads the shared state (the last sweep's hash, the alert
engine's records, RQ's registries, the monitor heartbeat), so any one process can export it and a restarted
process exports the same values at once. `hvbot monitor` registers it (one process per deployment, so the fleet's
gauges are not exported twice). When Redis does not answer, only `hvbot_redis_up 0` is exported.
Labels stay bounded: RQ queue names, replication health and state (enum names), alert severities.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter as Tally
from collections.abc import Iterable, Iterator

import redis
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from rq import Queue, Worker

from jobs import keys
from jobs.monitor import heartbeat
from jobs.monitor.state import AlertEngine
from jobs.monitor.rules import Severity

log = logging.getLogger("hvbot.metrics")


class RedisStateCollector(Collector):
    def __init__(self, client: redis.Redis, queues: Iterable[str]) -> None:
        self._r = client
        self._queues = tuple(queues)  # always exported, even while empty or unknown to RQ yet

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("hvbot_redis_up", "1 when the exporting process could read Redis at this scrape.")
        try:
            families = [*self._rq(), *self._sweep(), self._approvals(), *self._monitor()]
        except redis.RedisError as exc:
            log.warning("metrics: Redis unreachable at scrape (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _rq(self) -> list[Metric]:
        depth = GaugeMetricFamily("hvbot_queue_depth", "Jobs waiting in each RQ queue.", labels=["queue"])
        workers = GaugeMetricFamily("hvbot_rq_workers", "RQ workers registered per queue.", labels=["queue"])
        names = sorted({*self._queues, *(q.name for q in Queue.all(connection=self._r))})
        for name in names:
            queue = Queue(name, connection=self._r)
            depth.add_metric([name], queue.count)
            workers.add_metric([name], Worker.count(connection=self._r, queue=queue))
        return [depth, workers]

    def _sweep(self) -> list[Metric]:
        entries = [json.loads(raw) for raw in self._r.hvals(keys.REPLICATION_LAST_KEY)]
        vms = GaugeMetricFamily("hvbot_vms", "Replicated VMs by replication health and state, from the last sweep.",
                                labels=["health", "state"])
        for (health, state), count in sorted(Tally((v.get("health") or "Unknown", v.get("state") or "Unknown")
                                                   for e in entries for v in e.get("vms", [])).items()):
            vms.add_metric([health, state], count)
        swept = GaugeMetricFamily("hvbot_hosts_swept", "Hosts with a last sweep result.")
        swept.add_metric([], len(entries))
        down = GaugeMetricFamily("hvbot_hosts_unreachable", "Hosts whose last sweep could not reach them.")
        down.add_metric([], sum(1 for e in entries if e.get("error")))
        firing = AlertEngine(self._r).firing_by_severity([str(e["host"]) for e in entries])
        alerts = GaugeMetricFamily("hvbot_alerts_firing", "Replica health alerts firing, by severity.",
                                   labels=["severity"])
        for severity in Severity:
            alerts.add_metric([severity.value], firing.get(severity.value, 0))
        return [vms, swept, down, alerts]

    def _approvals(self) -> Metric:
        pending = GaugeMetricFamily("hvbot_approvals_pending", "Approval requests waiting for a decision "
                                    "(not expired).")
        pending.add_metric([], self._r.zcount(keys.approvals_pending_key(), time.time(), "+inf"))
        return pending

    def _monitor(self) -> list[Metric]:
        beat = heartbeat.read(self._r)
        if beat is None:
            return []  # no monitor ever ran here: the alert rule's absent() says so
        last = GaugeMetricFamily("hvbot_monitor_last_sweep_timestamp_seconds",
                                 "When the monitor last queued sweeps (Unix time).")
        last.add_metric([], beat.swept_at)
        stale = GaugeMetricFamily("hvbot_monitor_stale_after_seconds",
                                  "How long without a sweep is still normal for the monitor's settings.")
        stale.add_metric([], beat.stale_after_s)
        return [last, stale]
