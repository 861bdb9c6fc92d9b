"""A redis-server owned by the caller: its own free port on loopback, its own temp dir, nothing saved to disk.

The test session starts one for the run (tests/support/fixtures_redis.py), and tests that need "somebody else's
Redis" start a second one, so no test ever reads, writes or flushes a server it did not start. `ServerOptions`
starts a variant the same way (TLS and a password: tests/support/tls_redis.py).
"""

from __future__ import annotations

import ctypes
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import redis

INSTALL_HINT = ("redis-server is not installed, and the tests start their own (they never use your Redis). "
                "Install it: `apt-get install redis-server` (Debian, Ubuntu), `dnf install redis` (Fedora), "
                "`brew install redis` (macOS); or run the tests with ./dev test, which installs it on Debian.")
START_DEADLINE_S = 20.0
# Another process can take the port between our probe and redis-server's bind; a new port fixes that.
PORT_ATTEMPTS = 5


class RedisServerMissing(RuntimeError):
    """No redis-server executable on PATH."""


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        raise RedisServerMissing(INSTALL_HINT)
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec: if the test process dies without cleaning up (SIGKILL), the server goes too."""
    pr_set_pdeathsig, sigterm = 1, 15
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, sigterm)


@dataclass(frozen=True)
class ServerOptions:
    """What sets one kind of private server apart: the option that takes the free port, further options (given
    after the defaults, so they may override one), and the client options its readiness PING needs."""

    port_option: str = "--port"
    args: tuple[str, ...] = ()
    client: Mapping[str, Any] = field(default_factory=dict)


PLAIN = ServerOptions()


@dataclass
class PrivateRedis:
    """One running redis-server on 127.0.0.1:port; stop() kills it and removes its directory."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes]
    options: ServerOptions = PLAIN
    _stopped: bool = field(default=False, repr=False)

    @classmethod
    def start(cls, options: ServerOptions = PLAIN, directory: Path | None = None) -> PrivateRedis:
        """Start on a free port; `directory` (default: a new temp dir) becomes the server's and goes at stop()."""
        binary = redis_server_binary()
        directory = directory or Path(tempfile.mkdtemp(prefix="hvbot-test-redis-"))
        output = ""
        try:
            for _ in range(PORT_ATTEMPTS):
                server, output = cls._try_port(binary, directory, free_port(), options)
                if server is not None:
                    return server
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        shutil.rmtree(directory, ignore_errors=True)
        raise RuntimeError(f"could not start redis-server on a free port after {PORT_ATTEMPTS} attempts; "
                           f"its output ends:\n{output}")

    @classmethod
    def _try_port(cls, binary: str, directory: Path, port: int,
                  options: ServerOptions) -> tuple[PrivateRedis | None, str]:
        """The running server, or None and the end of its output (a failed start says why only there)."""
        args = [binary, options.port_option, str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(directory), "--logfile", str(directory / "redis.log"), "--daemonize", "no",
                *options.args]
        # preexec_fn is only safe while this process has one thread (the session's server starts before any).
        guard = _die_with_parent if sys.platform == "linux" and threading.active_count() == 1 else None
        # Errors in the options are written to stderr before the log file opens.
        with (directory / "redis.err").open("wb") as errors:
            process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors,
                                       preexec_fn=guard)  # noqa: PLW1509 - see above
        server = cls(port=port, directory=directory, process=process, options=options)
        if server._wait_ready():
            return server, ""
        server._kill()
        return None, server.log_tail()

    def _wait_ready(self) -> bool:
        """True once the server answers PING; False if it exited (port taken) or missed the deadline."""
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1, **self.options.client)
        deadline = time.monotonic() + START_DEADLINE_S
        tick = threading.Event()
        try:
            while self.process.poll() is None and time.monotonic() < deadline:
                try:
                    return bool(client.ping())
                except redis.ConnectionError:
                    tick.wait(0.02)  # the server is still starting: nothing to wait on but its socket
            return False
        finally:
            client.close()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def log_tail(self, lines: int = 20) -> str:
        found = [path.read_text(errors="replace") for path in (self.directory / "redis.err",
                                                               self.directory / "redis.log") if path.exists()]
        return "\n".join("\n".join(found).splitlines()[-lines:])

    def owns(self, client: redis.Redis) -> bool:
        """Whether `client` talks to this server (and so may be flushed by the tests)."""
        kwargs = client.connection_pool.connection_kwargs
        return kwargs.get("host") == "127.0.0.1" and kwargs.get("port") == self.port

    def _kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._kill()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
