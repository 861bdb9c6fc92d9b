"""Figures for backup windows and readiness: how long housekeeping takes to resume N overdue windows
(1 and 3 concurrent sweepers, resume itself free) and what one evaluate() costs. Uses REDIS_URL, db 10,
under a private key prefix that is deleted afterwards."""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import redis

from measure.own_redis import use_own_redis  # noqa: E402
from jobs.backup.conditions import ReplicaBackupFacts, evaluate
from jobs.backup.window import Window, WindowStore

T0 = datetime(2026, 5, 4, 22, 0, tzinfo=UTC)


def client() -> redis.Redis:
    # Replace the URL's db: a db in the URL path overrides redis-py's `db=` keyword.
    parts = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    return redis.Redis.from_url(urlunsplit(parts._replace(path="/10")))


def sweep(windows: int, sweepers: int) -> tuple[float, int]:
    prefix = f"bench:backup:{uuid.uuid4().hex}"
    setup = WindowStore(client(), prefix)
    for n in range(windows):
        setup.open(f"vm{n:05d}", "hv-a1", None, T0, T0 + timedelta(hours=1), "bench")
    calls: list[str] = []
    lock = threading.Lock()

    def resume(window: Window) -> None:
        with lock:
            calls.append(window.vm)

    threads = [threading.Thread(target=lambda: WindowStore(client(), prefix).housekeeping(
        T0 + timedelta(hours=2), resume)) for _ in range(sweepers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    keys = list(setup.redis.scan_iter(f"{prefix}:*"))
    if keys:
        setup.redis.delete(*keys)
    return elapsed, len(calls)


def evaluate_cost(rounds: int = 20000) -> float:
    facts = ReplicaBackupFacts("web01", "Replica", "Replicating", "Normal", T0, T0 + timedelta(seconds=1),
                               ("Ok",), primary_state="Replicating")
    started = time.perf_counter()
    for _ in range(rounds):
        evaluate(facts)
    return (time.perf_counter() - started) / rounds * 1e6


if __name__ == "__main__":
    use_own_redis()
    for sweepers in (1, 3):
        elapsed, resumed = sweep(1000, sweepers)
        print(f"housekeeping, 1000 overdue windows, {sweepers} sweeper(s): {elapsed * 1000:.0f} ms, "
              f"resume calls {resumed} (must be 1000)")
    print(f"evaluate(): {evaluate_cost():.1f} µs per call")
