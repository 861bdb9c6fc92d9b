"""The one place hvbot opens Redis: a plain REDIS_URL, or the master that Redis Sentinel names, with TLS.

Every process (serve, worker, monitor, the CLI) and RQ (its queue, worker, work horses and scheduler) use the
client made here. Each kind of process gets its own `Resilience`, because they differ in how long they may wait:
- a chat handler must answer Slack within 3 s: short timeouts and one quick retry (CHAT);
- the worker retries every command for about a minute, because RQ handles a Redis error only around its blocking
  dequeue and stops the worker on one anywhere else (WORKER);
- the monitor retries briefly and its loop backs off between rounds, so SIGTERM still stops it promptly (MONITOR);
- a one-shot command (`hvbot backup`, `check-config`) rides out a master failover, then gives up (CLI).
With Sentinel, a connection to a master that was demoted fails with "The previous master is now a slave"
(a ConnectionError in redis-py), and the retry asks the sentinels again: a failover costs seconds, not a restart.
`health_check_interval` pings a connection idle for longer than that before using it, which finds a connection a
restart broke before a command is lost on it (it matters most for RQ's pub/sub command channel).
Over TLS, a server that wants a client certificate (`tls-auth-clients yes`) and gets none, or one it does not trust,
hangs up right after the handshake; redis-py reports only a broken pipe for that, so the error says the likely cause.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.connection import SSLConnection
from redis.retry import Retry
from redis.sentinel import Sentinel

from bot.settings import Settings


@dataclass(frozen=True)
class Resilience:
    """How one kind of process rides out a Redis outage or a master failover."""

    retries: int
    backoff_cap_s: float
    backoff_base_s: float
    connect_timeout_s: float
    socket_timeout_s: float | None
    health_check_s: int = 0

    def retry(self) -> Retry:
        return Retry(ExponentialBackoff(cap=self.backoff_cap_s, base=self.backoff_base_s), self.retries)

    def client_kwargs(self) -> dict[str, Any]:
        return {"retry": self.retry(), "socket_connect_timeout": self.connect_timeout_s,
                "socket_timeout": self.socket_timeout_s, "health_check_interval": self.health_check_s}


CHAT = Resilience(retries=1, backoff_cap_s=0.2, backoff_base_s=0.008, connect_timeout_s=1.0, socket_timeout_s=2.0)
# 0.2 + 0.4 + ... doubling to 5 s, then 5 s: about 65 s of outage before a command gives up
WORKER = Resilience(retries=17, backoff_cap_s=5.0, backoff_base_s=0.1, connect_timeout_s=5.0, socket_timeout_s=None,
                    health_check_s=30)
MONITOR = Resilience(retries=3, backoff_cap_s=1.0, backoff_base_s=0.1, connect_timeout_s=2.0, socket_timeout_s=10.0,
                     health_check_s=30)
# 0.2 + 0.4 + 0.8 + 1.6 + 2 s x 8: about 19 s, longer than a Sentinel failover with down-after 5 s
CLI = Resilience(retries=12, backoff_cap_s=2.0, backoff_base_s=0.1, connect_timeout_s=2.0, socket_timeout_s=10.0)


def connect(settings: Settings, resilience: Resilience) -> redis.Redis:
    """A client of the Redis master: through the sentinels when HVBOT_REDIS_SENTINELS is set, else REDIS_URL."""
    if settings.redis_sentinels:
        return _sentinel_master(settings, resilience)
    url = settings.redis_url
    tls = tls_kwargs(settings)
    if tls and urlsplit(url).scheme == "redis":
        url = urlunsplit(urlsplit(url)._replace(scheme="rediss"))
    tls.pop("ssl", None)  # the rediss:// scheme selects the TLS connection class
    auth = _auth(settings.redis_username, settings.secret("redis_password"))
    return redis.Redis.from_url(url, **resilience.client_kwargs(), **auth, **tls, **_set_up_hook(tls))


def sentinel(settings: Settings, resilience: Resilience = CLI) -> Sentinel:
    """The sentinels of HVBOT_REDIS_SENTINELS (their `.sentinels` are one client each, for checks)."""
    tls = tls_kwargs(settings)
    tls |= _set_up_hook(tls)
    # No retry of their own: Sentinel asks each sentinel in turn and the master's retry (`resilience`) asks them
    # all again; redis-py's default (10 tries each) made a chat handler wait ~30 s for sentinels that refuse it.
    sentinel_kwargs = {"socket_connect_timeout": resilience.connect_timeout_s, "socket_timeout": 2.0, **tls,
                       "retry": Retry(NoBackoff(), 0),
                       **_auth(settings.redis_sentinel_username, settings.secret("redis_sentinel_password"))}
    return Sentinel(settings.sentinel_addresses(), sentinel_kwargs=sentinel_kwargs, **tls)


def _sentinel_master(settings: Settings, resilience: Resilience) -> redis.Redis:
    return sentinel(settings, resilience).master_for(
        settings.redis_master_name, redis_class=redis.Redis, db=settings.redis_db, **resilience.client_kwargs(),
        **_auth(settings.redis_username, settings.secret("redis_password")))


def _auth(username: str | None, password: str) -> dict[str, str]:
    found = {"username": username or "", "password": password}
    return {key: value for key, value in found.items() if value}


def tls_kwargs(settings: Settings) -> dict[str, Any]:
    """redis-py's TLS options, or none when TLS is off (HVBOT_REDIS_TLS unset and REDIS_URL not rediss://)."""
    if not (settings.redis_tls or urlsplit(settings.redis_url).scheme == "rediss"):
        return {}
    verify = ssl.CERT_REQUIRED if settings.redis_tls_verify else ssl.CERT_NONE
    found: dict[str, Any] = {"ssl": True, "ssl_cert_reqs": verify}
    if not settings.redis_tls_verify:
        found["ssl_check_hostname"] = False
    for key, path in (("ssl_ca_certs", settings.redis_tls_ca_file), ("ssl_certfile", settings.redis_tls_cert_file),
                      ("ssl_keyfile", settings.redis_tls_key_file)):
        if path is not None:
            found[key] = str(path)
    return found


class TlsRefused(redis.ConnectionError):
    """A TLS server hung up before its first answer: most likely it refused the client's certificate, or the lack
    of one. A ConnectionError, so every retry policy treats it as redis-py's own."""

    def __repr__(self) -> str:
        # redis-py's repr of its errors is only "network:ConnectionError", and Sentinel's "No master found" error
        # is made of the reprs of each sentinel's error
        return f"{type(self).__name__}({str(self)!r})"


def _set_up_hook(tls: dict[str, Any]) -> dict[str, Any]:
    return {"redis_connect_func": _set_up} if tls else {}


def _set_up(connection: SSLConnection) -> None:
    """redis-py's own set-up of a new TLS connection (AUTH, CLIENT SETINFO, SELECT), saying why it failed when the
    server hangs up before its first answer. TLS 1.3 completes the client's side of the handshake before the
    server checks the client's certificate, so a missing or refused one shows only on the first command."""
    try:
        connection.on_connect()
    except redis.AuthenticationError:
        raise
    except redis.ConnectionError as exc:
        where = f"Redis at {connection.host}:{connection.port} closed the TLS connection before its first answer"
        if connection.certfile is None:
            why = ("it probably requires a client certificate (tls-auth-clients yes) and none is configured: set "
                   "HVBOT_REDIS_TLS_CERT_FILE and HVBOT_REDIS_TLS_KEY_FILE")
        else:
            why = (f"it probably refused the client certificate {connection.certfile} (not signed by a CA in its "
                   "tls-ca-cert-file, expired, or not made for client authentication)")
        raise TlsRefused(f"{where}: {why} ({exc})") from exc


def describe(settings: Settings) -> str:
    """Where this configuration's Redis is and how TLS trusts it, without any secret: for check-config."""
    tls = tls_kwargs(settings)
    if settings.redis_sentinels:
        return (f"master {settings.redis_master_name!r} of sentinels {', '.join(settings.redis_sentinels)} "
                f"(db {settings.redis_db}{', ' + _describe_tls(tls) if tls else ''})")
    parts = urlsplit(settings.redis_url)
    host = parts.hostname or "?"
    scheme = "rediss" if tls else parts.scheme  # connect() upgrades redis:// when HVBOT_REDIS_TLS is on
    where = f"{scheme}://{host}:{parts.port or 6379}{parts.path or '/0'}"
    return f"{where} ({_describe_tls(tls)})" if tls else where


def _describe_tls(tls: dict[str, Any]) -> str:
    """Whether the server's certificate is checked, and against what: an unverified link only looks safe."""
    if tls["ssl_cert_reqs"] == ssl.CERT_NONE:
        trust = "server certificate NOT verified (HVBOT_REDIS_TLS_VERIFY=false)"
    else:
        trust = f"server certificate verified against {tls.get('ssl_ca_certs', 'the system CAs')}"
    client = f", client certificate {tls['ssl_certfile']}" if "ssl_certfile" in tls else ""
    return f"TLS, {trust}{client}"
