"""A redis-server a test owns that speaks only TLS: a throw-away CA and a certificate for 127.0.0.1 and localhost
(`lab.tls`, made with `cryptography`), a password (`requirepass`), no plain-text port, on loopback in a temp dir.
`TlsRedis.start(client_certs=True)` also asks every client for a certificate from that CA (`tls-auth-clients yes`)
and issues one (`tls.client_cert_file`, `tls.client_key_file`).

Started and stopped as `PrivateRedis` starts the session's server. A redis-server built without TLS fails to
start with these options; `start()` then raises `RedisTlsUnsupported`, whose text says so, for the test to skip.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import redis

from lab.tls import LabTLS, make_tls
from tests.support.private_redis import PrivateRedis, ServerOptions

# Linux routes all of 127.0.0.0/8 to loopback: an address the certificate does not name, for the hostname check.
UNNAMED_ADDRESS = "127.0.0.2"


class RedisTlsUnsupported(RuntimeError):
    """This redis-server cannot serve TLS (built without it)."""


def tls_options(tls: LabTLS, password: str) -> ServerOptions:
    """Clients prove who they are with the password, and with a certificate when `tls` has a client one."""
    client_certs = tls.client_cert_file is not None and tls.client_key_file is not None
    args = ("--port", "0", "--tls-cert-file", str(tls.cert_file), "--tls-key-file", str(tls.key_file),
            "--tls-ca-cert-file", str(tls.ca_file), "--tls-auth-clients", "yes" if client_certs else "no",
            "--requirepass", password, "--bind", "127.0.0.1", UNNAMED_ADDRESS)
    client = {"ssl": True, "ssl_ca_certs": str(tls.ca_file), "password": password}
    if client_certs:
        client |= {"ssl_certfile": str(tls.client_cert_file), "ssl_keyfile": str(tls.client_key_file)}
    return ServerOptions(port_option="--tls-port", args=args, client=client)


@dataclass
class TlsRedis:
    """One running TLS-only redis-server: its TLS port, the CA that signed its certificate, its password."""

    server: PrivateRedis
    tls: LabTLS
    password: str

    @classmethod
    def start(cls, client_certs: bool = False) -> TlsRedis:
        directory = Path(tempfile.mkdtemp(prefix="hvbot-test-redis-tls-"))
        try:
            tls = make_tls(directory / "tls", client=client_certs)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        password = "tls-redis-pw-" + secrets.token_hex(12)
        try:
            server = PrivateRedis.start(tls_options(tls, password), directory)
        except RuntimeError as exc:  # the plain session server runs, so what fails here is TLS
            raise RedisTlsUnsupported(f"this redis-server does not serve TLS (built without it?): {exc}") from None
        return cls(server, tls, password)

    @property
    def port(self) -> int:
        return self.server.port

    def url(self, db: int = 0, host: str = "127.0.0.1") -> str:
        return f"rediss://{host}:{self.port}/{db}"

    def admin(self) -> redis.Redis:
        """A client that trusts the CA and knows the password (and has the client certificate, if one is asked
        for), for the test's own setup and checks."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=2, socket_timeout=5,
                           **self.server.options.client)

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
