"""Redis clients of the process entry points, one per kind of process (see `bot.redis_client` for why each one
retries as it does). All of them honour REDIS_URL or HVBOT_REDIS_SENTINELS, passwords and TLS alike."""

from __future__ import annotations

import redis

from bot.redis_client import CLI, MONITOR, WORKER, connect
from bot.settings import Settings


def worker_redis(settings: Settings) -> redis.Redis:
    return connect(settings, WORKER)


def monitor_redis(settings: Settings) -> redis.Redis:
    return connect(settings, MONITOR)


def cli_redis(settings: Settings) -> redis.Redis:
    return connect(settings, CLI)
