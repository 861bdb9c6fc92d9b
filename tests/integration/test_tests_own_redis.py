"""The tests own their Redis: a test session starts its own redis-server, never touches the one REDIS_URL names,
and two sessions on one machine run side by side. Each check runs real pytest sessions in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.paths import ROOT
from tests.support.private_redis import INSTALL_HINT, PrivateRedis

# Redis-heavy and quick: flushes of DBs 11 and 12 around every test, Lua and WATCH races, an hvbot process
# (check-config) that reads REDIS_URL, and tests on the default DB 13 through the redis_conn fixture.
SUBSET = [
    "tests/integration/jobs/test_approvals.py",
    "tests/integration/bot/test_pacing.py",
    "tests/integration/bot/test_check_config.py::test_all_ok_against_lab_and_slack",
    "tests/integration/jobs/test_old_job_paths.py",
]
SESSION_DEADLINE_S = 480
SENTINEL_DBS = (0, 9, 10, 11, 12, 13)


def _pytest_session(env: dict[str, str], *tests: str) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests]
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(session: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        out, _ = session.communicate(timeout=SESSION_DEADLINE_S)
    except subprocess.TimeoutExpired:
        session.kill()
        out, _ = session.communicate()
    return session.returncode, out


@pytest.fixture
def users_redis() -> Iterator[redis.Redis]:
    """Somebody's Redis holding data the tests must keep: a sentinel key in several databases."""
    with PrivateRedis.start() as server:
        clients = {db: redis.Redis.from_url(server.url(db)) for db in SENTINEL_DBS}
        for db, client in clients.items():
            client.set("users:sentinel", f"precious data in db {db}")
        watcher = clients[0]
        watcher.ping()
        try:
            yield watcher
        finally:
            for client in clients.values():
                client.close()


def _connections_received(client: redis.Redis) -> int:
    return int(client.info("stats")["total_connections_received"])


def _assert_untouched(client: redis.Redis, connections_before: int) -> None:
    kwargs = client.connection_pool.connection_kwargs
    for db in SENTINEL_DBS:
        with redis.Redis(host=kwargs["host"], port=kwargs["port"], db=db) as other:
            assert other.get("users:sentinel") == f"precious data in db {db}".encode(), f"DB {db} lost its data"
            assert other.dbsize() == 1, f"DB {db} was written to"
    # Our own watcher holds one connection throughout; the sentinel check above opened one per database.
    assert _connections_received(client) == connections_before + len(SENTINEL_DBS), "a test session connected"


@pytest.mark.timeout(SESSION_DEADLINE_S + 60)
def test_a_redis_the_tests_did_not_start_keeps_its_data(users_redis: redis.Redis) -> None:
    kwargs = users_redis.connection_pool.connection_kwargs
    env = {**os.environ, "REDIS_URL": f"redis://{kwargs['host']}:{kwargs['port']}"}
    before = _connections_received(users_redis)
    code, out = _finish(_pytest_session(env, *SUBSET[:3]))
    assert code == 0, out[-4000:]
    _assert_untouched(users_redis, before)


@pytest.mark.timeout(SESSION_DEADLINE_S + 60)
def test_two_sessions_at_once_on_one_machine_both_pass(users_redis: redis.Redis) -> None:
    # Both are pointed at one shared Redis, as two runs on a machine with a Redis at 127.0.0.1:6379 would be.
    kwargs = users_redis.connection_pool.connection_kwargs
    env = {**os.environ, "REDIS_URL": f"redis://{kwargs['host']}:{kwargs['port']}"}
    before = _connections_received(users_redis)
    first, second = _pytest_session(env, *SUBSET), _pytest_session(env, *SUBSET)
    (first_code, first_out), (second_code, second_out) = _finish(first), _finish(second)
    assert first_code == 0, first_out[-4000:]
    assert second_code == 0, second_out[-4000:]
    _assert_untouched(users_redis, before)


def test_without_redis_server_the_session_says_how_to_install_it(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # an empty directory: no redis-server on PATH
    code, out = _finish(_pytest_session(env, "tests/unit/bot/test_settings.py"))
    assert code == pytest.ExitCode.USAGE_ERROR, out[-4000:]
    assert INSTALL_HINT in out


def test_the_session_server_is_gone_after_stop() -> None:
    server = PrivateRedis.start()
    client = redis.Redis.from_url(server.url(13))
    assert client.ping() and server.owns(client) and server.directory.is_dir()
    server.stop()
    assert server.process.returncode is not None and not server.directory.exists()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    client.close()
