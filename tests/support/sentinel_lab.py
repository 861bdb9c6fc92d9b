"""A Redis Sentinel deployment a test owns: a master, a replica and three sentinels (`redis-server --sentinel`
with generated config files), all on free loopback ports in one temporary directory, all stopped by `stop()`.

`failover()` runs `SENTINEL FAILOVER` after the replica has every write (WAIT), and returns once all three
sentinels name the promoted replica and it accepts writes, so a test can tell "lost in the failover" apart from
"never replicated".

`SentinelLab(tls)` is the same deployment speaking only TLS (`lab.tls` certificates): every node listens on a TLS
port alone (`port 0`), the replica follows its master over TLS and the sentinels reach every node and each other
over TLS (`tls-replication yes`), so the addresses they hand out are TLS ports. With a client certificate in
`tls` (`make_tls(client=True)`) every node asks clients for one (`tls-auth-clients yes`) and presents it itself
when it connects to another node. A redis-server that refuses these options raises `RedisTlsUnsupported`.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import redis

from lab.tls import LabTLS
from tests.support.fixtures_redis import wait_until
from tests.support.private_redis import _die_with_parent, free_port, redis_server_binary
from tests.support.tls_redis import RedisTlsUnsupported

MASTER_NAME = "hvbot"
DOWN_AFTER_MS = 2000  # only for a dead master; SENTINEL FAILOVER does not wait for it


class SentinelLabDied(RuntimeError):
    """A node of the lab exited while it was starting; the text ends with what it said."""


class SentinelLab:
    def __init__(self, tls: LabTLS | None = None) -> None:
        self.binary = redis_server_binary()
        self.tls = tls
        self.dir = Path(tempfile.mkdtemp(prefix="hvbot-test-sentinel-"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.names: list[str] = []  # of procs, for diagnostics
        self.data_ports = [free_port(), free_port()]  # [0] starts as master, [1] as its replica
        self.sentinel_ports = [free_port() for _ in range(3)]
        self._clients: dict[int, redis.Redis] = {}

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
                directives = [*self._directives(port), ("bind", "127.0.0.1"), ("dir", str(self.dir))]
                conf.write_text("".join(f"{name} {value}\n" for name, value in directives) +
                                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n"
                                f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
                                f"sentinel failover-timeout {MASTER_NAME} 10000\n")
                self._popen(f"sentinel-{port}", [self.binary, str(conf), "--sentinel"])
            wait_until(self._ready, 60, "three sentinels that know the replica and each other")
        except SentinelLabDied as exc:
            self.stop()
            if self.tls is None or "tls" not in str(exc).lower():  # e.g. a port taken meanwhile: not a TLS matter
                raise
            raise RedisTlsUnsupported(f"this redis-server refuses Sentinel over TLS: {exc}") from None
        except BaseException:
            self.stop()
            raise
        return self

    def _directives(self, port: int) -> list[tuple[str, str]]:
        """Where a node listens and, with TLS, the certificates it shows and trusts (config file names)."""
        if self.tls is None:
            return [("port", str(port))]
        tls = self.tls
        found = [("port", "0"), ("tls-port", str(port)), ("tls-cert-file", str(tls.cert_file)),
                 ("tls-key-file", str(tls.key_file)), ("tls-ca-cert-file", str(tls.ca_file)),
                 ("tls-replication", "yes")]
        if tls.client_cert_file is None or tls.client_key_file is None:
            return [*found, ("tls-auth-clients", "no")]
        # the certificate a node presents when it is the client (replica -> master, sentinel -> any node)
        return [*found, ("tls-auth-clients", "yes"), ("tls-client-cert-file", str(tls.client_cert_file)),
                ("tls-client-key-file", str(tls.client_key_file))]

    def _spawn(self, name: str, port: int, extra: list[str]) -> None:
        # appendonly yes: the durable setup the README recommends for hvbot's approvals and windows
        listen = [arg for name_value in self._directives(port) for arg in (f"--{name_value[0]}", name_value[1])]
        args = [self.binary, *listen, "--bind", "127.0.0.1", "--dir", str(self.dir), "--save", "",
                "--appendonly", "yes", "--appendfilename", f"{name}.aof", "--appenddirname", f"aof-{name}",
                "--logfile", str(self.dir / f"{name}.log"), *extra]
        self._popen(name, args)

    def _popen(self, name: str, args: list[str]) -> None:
        # a refused option is written to stderr before any log file opens
        with (self.dir / f"{name}.err").open("wb") as errors:
            self.procs.append(subprocess.Popen(args, preexec_fn=_die_with_parent, stdout=subprocess.DEVNULL,
                                               stderr=errors))
        self.names.append(name)

    def client_kwargs(self) -> dict[str, Any]:
        """redis-py options of a client that the nodes accept (TLS, the CA, the client certificate)."""
        if self.tls is None:
            return {}
        found: dict[str, Any] = {"ssl": True, "ssl_ca_certs": str(self.tls.ca_file)}
        if self.tls.client_cert_file is not None and self.tls.client_key_file is not None:
            found |= {"ssl_certfile": str(self.tls.client_cert_file), "ssl_keyfile": str(self.tls.client_key_file)}
        return found

    def _client(self, port: int) -> redis.Redis:
        # kept per port: a new client per poll would pay a TLS handshake each time
        if port not in self._clients:
            self._clients[port] = redis.Redis(port=port, socket_connect_timeout=2, socket_timeout=5,
                                              **self.client_kwargs())
        return self._clients[port]

    def sentinel(self, port: int) -> redis.Redis:
        return self._client(port)

    def data(self, port: int) -> redis.Redis:
        return self._client(port)

    def _check_alive(self) -> None:
        for name, proc in zip(self.names, self.procs, strict=True):
            if proc.poll() is not None:
                said = [path.read_text(errors="replace") for path in (self.dir / f"{name}.err",
                                                                      self.dir / f"{name}.log") if path.exists()]
                tail = "\n".join("\n".join(said).strip().splitlines()[-5:])
                raise SentinelLabDied(f"{name} exited with status {proc.returncode}: {tail}")

    def _ready(self) -> bool:
        self._check_alive()
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

    def role(self, port: int) -> str:
        """A data node's replication role, "master" or "slave"."""
        return str(self.data(port).info("replication").get("role"))

    def failover(self) -> int:
        """Promote the replica; returns the new master's port once every sentinel names it and it takes writes."""
        old = self.master_port()
        new = next(port for port in self.data_ports if port != old)
        assert self.data(old).wait(1, 10_000) >= 1, "the replica did not acknowledge every write before the failover"
        self.sentinel(self.sentinel_ports[0]).sentinel_failover(MASTER_NAME)

        def promoted() -> bool:
            try:
                return (all(self.master_port(port) == new for port in self.sentinel_ports)
                        and self.role(new) == "master")
            except redis.RedisError:
                return False

        wait_until(promoted, 60, f"every sentinel names 127.0.0.1:{new} the master")
        return new

    def stop_one_sentinel(self) -> None:
        """SIGTERM the last sentinel (the procs list holds master, replica, then the sentinels)."""
        self.procs[-1].terminate()
        self.procs[-1].wait(15)

    def stop(self) -> None:
        for client in self._clients.values():
            client.close()
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
