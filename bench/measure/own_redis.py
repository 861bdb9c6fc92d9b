"""The Redis a benchmark may empty: one it owns, never the server REDIS_URL names on the user's machine.

Benchmarks flush databases. `./dev bench` starts one private redis-server for the run and names it in
HVBOT_BENCH_REDIS_URL; a benchmark started by hand starts its own (stopped when it exits). Either way REDIS_URL is
pointed at it before the benchmark reads it, so the child processes it starts inherit the same server.
"""

from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # benchmarks run as files; tests/ is not installed

from tests.support.private_redis import PrivateRedis  # noqa: E402

BENCH_URL = "HVBOT_BENCH_REDIS_URL"


def use_own_redis() -> str:
    """Point REDIS_URL at a redis-server this benchmark run owns; its URL."""
    url = os.environ.get(BENCH_URL)
    if not url:
        server = PrivateRedis.start()
        atexit.register(server.stop)
        url = server.url()
        os.environ[BENCH_URL] = url
    os.environ["REDIS_URL"] = url
    return url
