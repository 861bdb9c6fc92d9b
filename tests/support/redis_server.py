"""A redis-server a test owns: started on a free port in a temporary directory, restarted with or without its
data, stopped at the end. Tests that restart Redis use this one, never a server they did not start."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.fixtures_redis import wait_until
from tests.support.fixtures_slack import free_port


class OwnRedis:
    def __init__(self, directory: Path) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (Debian package redis-server)")
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=5)

    def start(self) -> OwnRedis:
        # No automatic snapshots: only SHUTDOWN SAVE writes dump.rdb, so "with data" and "without" are exact.
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no", "--logfile", str(self.dir / "log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        probe = self.client()
        wait_until(lambda: _answers(probe), 20, f"redis-server on port {self.port} answers")
        probe.close()
        return self

    def stop(self, save: bool = False) -> None:
        """SHUTDOWN SAVE writes the data to dump.rdb first; SHUTDOWN NOSAVE leaves nothing behind."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.client().shutdown(save=save, nosave=not save)
        except redis.ConnectionError:
            pass  # the server closes the connection as it exits
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def restart(self, keep_data: bool) -> None:
        self.stop(save=keep_data)
        if not keep_data:
            (self.dir / "dump.rdb").unlink(missing_ok=True)
        self.start()

    def close(self) -> None:
        self.stop(save=False)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.BusyLoadingError):
        return False


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """A redis-server of the test's own, for tests that kill, restart or reconfigure it."""
    server = OwnRedis(tmp_path / "redis").start()
    yield server
    server.close()
