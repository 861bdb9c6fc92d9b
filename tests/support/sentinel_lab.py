"""A Redis Sentinel deployment a test owns: a master, a replica and three sentinels (`redis-server --sentinel`
with generated config files), all on free loopback ports in one temporary directory, all stopped by `stop()`.

`failover()` runs `SENTINEL FAILOVER` after the replica has every write (WAIT), and returns once all three
sentinels name the promoted replica and it accepts writes, so a test can tell "lost in the failover" apart from
"never replicated".
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import redis

from tests.support.fixtures_redis import wait_until
from tests.support.private_redis import _die_with_parent, free_port, redis_server_binary

MASTER_NAME = "hvbot"
DOWN_AFTER_MS = 2000  # only for a dead master; SENTINEL FAILOVER does not wait for it


class SentinelLab:
    def __init__(self) -> None:
        self.binary = redis_server_binary()
        self.dir = Path(tempfile.mkdtemp(prefix="hvbot-test-sentinel-"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.data_ports = [free_port(), free_port()]  # [0] starts as master, [1] as its replica
        self.sentinel_ports = [free_port() for _ in range(3)]

    @property
    def sentinels(self) -> str:
        """The HVBOT_REDIS_SENTINELS value."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def start(self) -> SentinelLab:
        try:
            master, replica = self.data_ports
            self._spawn("master", master, [])
            self._spawn("replica", replica, ["--replicaof", "127.0.0.1", str(master)])
            for port in self.sentinel_ports:
                conf = self.dir / f"sentinel-{port}.conf"  # sentinel rewrites its own config: one file each
                conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n"
                                f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
                                f"sentinel failover-timeout {MASTER_NAME} 10000\n")
                self.procs.append(subprocess.Popen([self.binary, str(conf), "--sentinel"], preexec_fn=_die_with_parent,
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_until(self._ready, 60, "three sentinels that know the replica and each other")
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str, port: int, extra: list[str]) -> None:
        # appendonly yes: the durable setup the README recommends for hvbot's approvals and windows
        args = [self.binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(self.dir), "--save", "",
                "--appendonly", "yes", "--appendfilename", f"{name}.aof", "--appenddirname", f"aof-{name}",
                "--logfile", str(self.dir / f"{name}.log"), *extra]
        self.procs.append(subprocess.Popen(args, preexec_fn=_die_with_parent, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL))

    def sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_connect_timeout=2, socket_timeout=5)

    def data(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_connect_timeout=2, socket_timeout=5)

    def _ready(self) -> bool:
        try:
            for port in self.sentinel_ports:
                client = self.sentinel(port)
                if (len(client.sentinel_slaves(MASTER_NAME)) < 1 or len(client.sentinel_sentinels(MASTER_NAME)) < 2
                        or self.master_port(port) != self.data_ports[0]):
                    return False
            return bool(self.data(self.data_ports[1]).info("replication").get("master_link_status") == "up")
        except redis.RedisError:
            return False

    def master_port(self, sentinel_port: int | None = None) -> int:
        host_port = self.sentinel(sentinel_port or self.sentinel_ports[0]).sentinel_get_master_addr_by_name(
            MASTER_NAME)
        return int(host_port[1])

    def failover(self) -> int:
        """Promote the replica; returns the new master's port once every sentinel names it and it takes writes."""
        old = self.master_port()
        new = next(port for port in self.data_ports if port != old)
        assert self.data(old).wait(1, 10_000) >= 1, "the replica did not acknowledge every write before the failover"
        self.sentinel(self.sentinel_ports[0]).sentinel_failover(MASTER_NAME)

        def promoted() -> bool:
            try:
                return (all(self.master_port(port) == new for port in self.sentinel_ports)
                        and self.data(new).info("replication").get("role") == "master")
            except redis.RedisError:
                return False

        wait_until(promoted, 60, f"every sentinel names 127.0.0.1:{new} the master")
        return new

    def stop_one_sentinel(self) -> None:
        """SIGTERM the last sentinel (the procs list holds master, replica, then the sentinels)."""
        self.procs[-1].terminate()
        self.procs[-1].wait(15)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)
