"""Alert engine cost per sweep: 5,000 VMs on 250 hosts, one ingest per host (as the host sweep jobs do).

Prints the time and Redis commands of a healthy sweep and of a storm sweep (every VM Critical), and the
notifications per channel in the storm's first two simulated minutes. Uses Redis at REDIS_URL, DB 11.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure.own_redis import use_own_redis  # noqa: E402
from jobs.monitor.rules import AlertRules, HostObservation, ReplicaObservation  # noqa: E402
from jobs.monitor.state import AlertEngine  # noqa: E402

HOSTS, VMS_PER_HOST = 250, 20
T0 = datetime(2026, 9, 1, tzinfo=UTC)


def commands(r: redis.Redis) -> int:
    return int(r.info("stats")["total_commands_processed"])


def fleet() -> dict[str, list[ReplicaObservation]]:
    out = {}
    for i in range(HOSTS):
        host, site = f"hv-{i:03d}", f"site-{i % 5}"
        out[host] = [
            ReplicaObservation(host, site, f"vm-{i:03d}-{j:02d}", "Primary", "Replicating", "Normal", 300,
                               T0 - timedelta(seconds=30), 100, 0)
            for j in range(VMS_PER_HOST)
        ]
    return out


def run_sweep(eng: AlertEngine, vms: dict, t: float, critical: bool) -> tuple[float, list]:
    start, notes = time.perf_counter(), []
    for i, (host, obs) in enumerate(vms.items()):
        seen = [replace(o, health="Critical") for o in obs] if critical else obs
        now = T0 + timedelta(seconds=t + i * 0.1)
        notes += eng.ingest([HostObservation(host, obs[0].site, True), *seen], now)
    return time.perf_counter() - start, notes


def main() -> None:
    use_own_redis()
    pool = redis.ConnectionPool.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"))
    pool.connection_kwargs["db"] = 11  # a DB in REDIS_URL's path would otherwise win over db=
    r = redis.Redis(connection_pool=pool)
    r.flushdb()
    eng = AlertEngine(r, prefix="bench:alerts", rules=AlertRules(group_by="host"))
    vms = fleet()
    c0 = commands(r)
    healthy_s, _ = run_sweep(eng, vms, 0, critical=False)
    c1 = commands(r)
    storm_s, notes = run_sweep(eng, vms, 60, critical=True)
    c2 = commands(r)
    for tick in range(65, 181, 5):
        notes += eng.tick(T0 + timedelta(seconds=tick))
    second_s, more = run_sweep(eng, vms, 120, critical=True)
    notes += more
    c3 = commands(r)
    per_channel = dict(Counter(n.channel for n in notes))
    print(f"healthy sweep: {healthy_s:.2f} s, {c1 - c0} redis commands, {HOSTS} ingests")
    print(f"storm sweep:   {storm_s:.2f} s, {c2 - c1} redis commands")
    print(f"second storm sweep: {second_s:.2f} s; notifications per channel in 2 min: {per_channel}")
    r.flushdb()
    print(f"RESULT healthy_s={healthy_s:.3f} storm_s={storm_s:.3f} vms={HOSTS * VMS_PER_HOST} hosts={HOSTS} "
          f"redis_cmds_healthy={c1 - c0} redis_cmds_storm={c2 - c1} redis_cmds_storm2={c3 - c2 } "
          f"max_notes_per_channel={max(per_channel.values())}")


if __name__ == "__main__":
    main()
