"""Redis for tests: a redis-server this test session starts for itself, on a free port, killed at the end.

Tests never use your Redis: REDIS_URL from the environment is ignored and replaced, for this process and every
process a test starts, by the private server's URL. Each test module picks its own database there (13 by default),
emptied around each test; only a server this session started is ever flushed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import redis

from tests.support.private_redis import PrivateRedis, RedisServerMissing

TEST_DB = 13
# One queue name per test run: a second run's jobs can never be taken by this run's workers, even if both
# were pointed at one server by hand.
TEST_QUEUE = f"hvbot-test-{os.getpid()}"

_server: PrivateRedis | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Start the session's server before collection, so that REDIS_URL is the private one from the first import."""
    global _server
    if config.option.help or config.option.version:
        return
    try:
        _server = PrivateRedis.start()
    except RedisServerMissing as exc:
        raise pytest.UsageError(str(exc)) from None
    # Code under test and the hvbot processes tests launch read REDIS_URL: point them at our server.
    os.environ["REDIS_URL"] = _server.url(0)


def pytest_unconfigure(config: pytest.Config) -> None:
    global _server
    if _server is not None:
        _server.stop()
        _server = None


def session_redis() -> PrivateRedis:
    if _server is None:
        raise RuntimeError("the test session's redis-server is not running (tests.support.fixtures_redis is "
                           "loaded as a pytest plugin by tests/conftest.py)")
    return _server


def redis_url_on_db(db: int) -> str:
    """The session's server, one database. The DB goes in the path: a path in the URL beats redis-py's db=."""
    return session_redis().url(db)


def test_redis_url() -> str:
    return redis_url_on_db(TEST_DB)


test_redis_url.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def _flushdb(client: redis.Redis) -> None:
    if not session_redis().owns(client):
        raise RuntimeError("refusing to flush a Redis this test session did not start")
    client.flushdb()


@contextmanager
def emptied_db(db: int) -> Iterator[redis.Redis]:
    """A client on database `db` (a test module's own) of the session's server, emptied before and after."""
    client = redis.Redis.from_url(redis_url_on_db(db))
    assert client.connection_pool.connection_kwargs["db"] == db
    _flushdb(client)
    try:
        yield client
    finally:
        _flushdb(client)
        client.close()


@pytest.fixture(scope="session")
def redis_server() -> PrivateRedis:
    """The session's own redis-server (port, directory, log)."""
    return session_redis()


@pytest.fixture
def redis_url(redis_server: PrivateRedis) -> str:
    return redis_server.url(TEST_DB)


@pytest.fixture
def redis_conn(redis_url: str, redis_server: PrivateRedis) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(redis_url)
    try:
        conn.ping()
    except redis.RedisError as exc:
        pytest.fail(f"the test session's redis-server on port {redis_server.port} does not answer ({exc}); "
                    f"its log ends:\n{redis_server.log_tail()}")
    _flushdb(conn)
    yield conn
    _flushdb(conn)
    conn.close()


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> object:
    """Wait for a Redis-side condition with a deadline (Redis cannot notify us of arbitrary state)."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not true after {timeout} s")
        tick.wait(0.01)
