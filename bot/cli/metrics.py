"""Prometheus exposition of one hvbot process: its registry, its port, and the forking worker's multiprocess mode.

Which process exports what: `hvbot serve` its commands, acks, Slack calls and Socket Mode state (on its own HTTP
port); `hvbot worker` its jobs, Hyper-V calls and Slack calls (on HVBOT_METRICS_PORT); `hvbot monitor` the shared
state read from Redis at scrape time (queues, workers, the last sweep, alerts, approvals, its heartbeat), so those
gauges come from one process per deployment.

Why multiprocess mode for the forking worker: RQ runs every job in a work horse forked for it, and a horse's
counters die with it. prometheus-client's multiprocess mode keeps every process's counters in memory-mapped files
under PROMETHEUS_MULTIPROC_DIR, and the worker's scrape adds them up: the documented mechanism, no IPC of our own.
The library picks its value class when it is imported, from that variable, so a worker started without it
creates a private directory and starts itself again with it set (and removes the directory when it exits).
One file per horse would pile up (a horse per job), so each scrape first folds the files of processes that have
exited into one archive file per metric type (counters and histogram buckets add up), under a lock.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable

import redis
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from bot.adapters.http import BoltHTTPServer, Exposition
from bot.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
OWNED_ENV = "HVBOT_METRICS_OWN_DIR"  # set by the restart below: this process created the directory
ADDITIVE = ("counter", "histogram")  # what a dead process's file adds to the archive; its gauges are dropped
HEADER_BYTES = 8  # prometheus-client's file header: the bytes used, then padding


def exposition(registry: CollectorRegistry) -> Exposition:
    def render(accept: str | None) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept or "")
        return encoder(registry), content_type

    return render


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def restart_in_multiprocess_mode() -> None:
    """Start this command again (same pid) with a private PROMETHEUS_MULTIPROC_DIR; never returns."""
    path = tempfile.mkdtemp(prefix="hvbot-metrics-")
    env = {**os.environ, MULTIPROC_ENV: path, OWNED_ENV: path}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def remove_owned_dir() -> None:
    path = multiprocess_dir()
    if path is not None and os.environ.get(OWNED_ENV) == path:
        shutil.rmtree(path, ignore_errors=True)


class FoldingMultiProcessCollector(MultiProcessCollector):
    """MultiProcessCollector that first folds the files of exited processes into `<type>_archive.db`."""

    def __init__(self, registry: CollectorRegistry | None, path: str,
                 alive: Callable[[int], bool] | None = None) -> None:
        super().__init__(registry, path)
        self._dir = path
        self._alive = alive or process_alive
        self._lock = threading.Lock()

    def collect(self):  # type: ignore[no-untyped-def]  # prometheus-client's own signature is untyped
        with self._lock:
            fold_exited(self._dir, self._alive)
            return self.merge(sized_files(self._dir), accumulate=True)


def sized_files(path: str) -> list[str]:
    """The process files past their header. A starting process opens its file before it sizes it, and the
    library's reader fails on an empty file (a scrape in that moment answered 500); such a file holds nothing."""
    return [name for name in sorted(glob.glob(os.path.join(path, "*.db")))
            if os.path.getsize(name) >= HEADER_BYTES]


def fold_exited(path: str, alive: Callable[[int], bool]) -> int:
    """Add the counters and histograms of exited processes to the archive files, then remove their files."""
    folded = 0
    for name in sorted(glob.glob(os.path.join(path, "*.db"))):
        prefix, _, pid = os.path.basename(name)[:-3].rpartition("_")
        if not pid.isdigit() or int(pid) == os.getpid() or alive(int(pid)):
            continue  # the archive itself, this process, or one still running
        if prefix in ADDITIVE and os.path.getsize(name) >= HEADER_BYTES:  # an empty one died before counting
            archive = MmapedDict(os.path.join(path, f"{prefix}_archive.db"))
            try:
                for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(name):  # and its position
                    old, _ = archive.read_value(key)
                    archive.write_value(key, old + value, timestamp)
            finally:
                archive.close()
        os.remove(name)
        folded += 1
    return folded


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process reuses the pid: treat it as running, fold later
    return True


def process_registry(collectors: Iterable[Collector] = ()) -> CollectorRegistry:
    """The registry a process exposes: the default one, or, in multiprocess mode, one reading every process's
    files; plus the process's own scrape-time collectors."""
    path = multiprocess_dir()
    if path is None:
        registry = REGISTRY
    else:
        registry = CollectorRegistry()
        FoldingMultiProcessCollector(registry, path)
    for collector in collectors:
        registry.register(collector)
    return registry


def serve_metrics(settings: Settings, registry: CollectorRegistry, ready: Callable[[], bool]) -> BoltHTTPServer:
    """`/metrics`, `/healthz` and `/readyz` on HVBOT_METRICS_BIND:HVBOT_METRICS_PORT, from a background thread."""
    return BoltHTTPServer(None, settings.metrics_bind, settings.metrics_port, ready,
                          metrics=exposition(registry)).start()


def redis_ready(connection: redis.Redis) -> Callable[[], bool]:
    """A readiness check: Redis answers a PING."""

    def ready() -> bool:
        try:
            return bool(connection.ping())
        except redis.RedisError:
            return False

    return ready
