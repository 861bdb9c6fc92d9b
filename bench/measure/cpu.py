"""CPU seconds of this process, of other processes (with their descendants) and of a Redis server.

Why: on a machine whose cores the client, the lab and Redis share, a fan-out's wall time is bounded below by the
CPU it needs spread over every core; the benchmarks print that floor so a missed target shows whether a different
client design could meet it, or only less CPU per host.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

import redis


def own_cpu_s() -> float:
    """This process, all threads, user + system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_s(pid: int) -> float:
    """User + system CPU of a process and its live descendants, from /proc; 0 where /proc does not exist."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total + sum(process_cpu_s(child) for child in _children(pid))


def processes_cpu_s(pids: list[int]) -> float:
    return sum(process_cpu_s(p) for p in pids)


def redis_cpu_s(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return out
