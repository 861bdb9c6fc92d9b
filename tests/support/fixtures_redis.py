"""Redis for tests: the server ./dev provides (REDIS_URL), on its own database (13), emptied around each test."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

TEST_DB = 13
# One queue name per test run, so a second `./dev test` running at the same time on the same Redis never
# takes this run's jobs.
TEST_QUEUE = f"hvbot-test-{os.getpid()}"


def redis_url_on_db(db: int) -> str:
    """REDIS_URL pointed at one database. The DB goes in the path: a path in the URL beats redis-py's db=."""
    parts = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"))
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def test_redis_url() -> str:
    return redis_url_on_db(TEST_DB)


@contextmanager
def emptied_db(db: int) -> Iterator[redis.Redis]:
    """A client on database `db` (a test module's own), emptied before and after: never anyone else's DB."""
    client = redis.Redis.from_url(redis_url_on_db(db))
    assert client.connection_pool.connection_kwargs["db"] == db
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


test_redis_url.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@pytest.fixture
def redis_url() -> str:
    return test_redis_url()


@pytest.fixture
def redis_conn(redis_url: str) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(redis_url)
    try:
        conn.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {redis_url} is not reachable ({exc}); run the tests with ./dev test")
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> object:
    """Wait for a Redis-side condition with a deadline (Redis cannot notify us of arbitrary state)."""
    import threading
    import time

    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not true after {timeout} s")
        tick.wait(0.01)
