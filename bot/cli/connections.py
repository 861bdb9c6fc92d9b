"""Redis clients of the long-running processes (worker, monitor): how each one rides out a Redis restart.

A chat handler must answer within 3 s, so it gets `bot.runtime.redis_connection` (one quick retry). Background
processes have no such deadline:
- the worker's client retries every command for about a minute (redis-py Retry with ExponentialBackoff), because RQ
  handles a Redis error only around its blocking dequeue and stops the worker on one anywhere else;
- the monitor's client retries briefly and its loop does the rest (`jobs.monitor.loop.Monitor.run_forever` waits
  with backoff and logs each failed round), so SIGTERM still stops it promptly during an outage.
`health_check_interval` pings a connection idle for longer than that before using it, which finds a connection a
restart broke before a command is lost on it (it matters most for RQ's pub/sub command channel).
"""

from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

# 0.2 + 0.4 + ... doubling to 5 s, then 5 s: about 65 s of outage before a command gives up
WORKER_RETRY = Retry(ExponentialBackoff(cap=5.0, base=0.1), retries=17)
MONITOR_RETRY = Retry(ExponentialBackoff(cap=1.0, base=0.1), retries=3)


def worker_redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, retry=WORKER_RETRY, health_check_interval=30, socket_connect_timeout=5)


def monitor_redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, retry=MONITOR_RETRY, health_check_interval=30, socket_connect_timeout=2,
                                socket_timeout=10)
