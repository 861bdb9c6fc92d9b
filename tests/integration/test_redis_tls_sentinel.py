"""Redis Sentinel over TLS: a master, a replica and three sentinels that listen only on TLS ports, replicate and
talk to each other over TLS, and ask every client for a certificate (tests.support.sentinel_lab with `lab.tls`).
hvbot's one connection factory, given the sentinels, the master name and its TLS settings (CA, client certificate),
finds the master through them, writes, and after `SENTINEL FAILOVER` writes to the promoted replica. Without a
client certificate the sentinels hang up on it, and its error says so. A redis-server that refuses these options
makes the module skip with what it said."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.sentinel import SentinelManagedSSLConnection

from bot.cli.check_config import check_sentinels
from bot.redis_client import CHAT, CLI, connect, describe
from bot.settings import Settings
from lab.tls import make_tls
from tests.support.fixtures_redis import wait_until
from tests.support.sentinel_lab import MASTER_NAME, SentinelLab
from tests.support.tls_redis import RedisTlsUnsupported

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def tls_sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelLab]:
    tls = make_tls(tmp_path_factory.mktemp("sentinel-tls"), client=True)
    try:
        lab = SentinelLab(tls).start()
    except RedisTlsUnsupported as exc:
        pytest.skip(str(exc))
    yield lab
    lab.stop()


def _settings(lab: SentinelLab, monkeypatch: pytest.MonkeyPatch, client_cert: bool = True) -> Settings:
    """hvbot's settings as its processes read them from the environment; REDIS_URL points nowhere, to show that
    only the sentinels are asked."""
    tls = lab.tls
    assert tls is not None and tls.client_cert_file is not None and tls.client_key_file is not None
    env = {"HVBOT_REDIS_SENTINELS": lab.sentinels, "HVBOT_REDIS_MASTER_NAME": MASTER_NAME,
           "REDIS_URL": "redis://127.0.0.1:1/0", "HVBOT_REDIS_TLS": "true", "HVBOT_REDIS_TLS_CA_FILE": str(tls.ca_file)}
    if client_cert:
        env |= {"HVBOT_REDIS_TLS_CERT_FILE": str(tls.client_cert_file),
                "HVBOT_REDIS_TLS_KEY_FILE": str(tls.client_key_file)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def _writes(client: redis.Redis, key: str, value: str) -> bool:
    try:
        return bool(client.set(key, value))
    except redis.RedisError:
        return False


def test_hvbot_finds_the_master_through_tls_sentinels_and_follows_a_failover(
        tls_sentinels: SentinelLab, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(tls_sentinels, monkeypatch)
    client = connect(settings, CLI)
    pool = client.connection_pool
    assert pool.connection_class is SentinelManagedSSLConnection  # type: ignore[attr-defined]
    before = tls_sentinels.master_port()
    assert client.set("hvbot:tls-sentinel:before", "1")
    assert pool.get_master_address() == ("127.0.0.1", before)  # type: ignore[attr-defined]
    assert tls_sentinels.data(before).get("hvbot:tls-sentinel:before") == b"1"  # written on the master's TLS port

    quorum = check_sentinels(settings)  # `hvbot check-config`'s look at the sentinels, over TLS too
    assert (quorum.ok, quorum.warn) == (True, False), quorum.detail
    assert quorum.detail == f"3 of 3 answer and reach the quorum for {MASTER_NAME!r}"
    assert describe(settings) == (
        f"master {MASTER_NAME!r} of sentinels {tls_sentinels.sentinels.replace(',', ', ')} (db 0, TLS, server "
        f"certificate verified against {tls_sentinels.tls.ca_file}, "  # type: ignore[union-attr]
        f"client certificate {tls_sentinels.tls.client_cert_file})")  # type: ignore[union-attr]

    after = tls_sentinels.failover()
    assert after != before
    # The old master takes writes until the sentinels demote it (their INFO period, ~10 s): a write landing there
    # would be lost. Once it is a replica, hvbot's connection to it is refused and its retry asks the sentinels.
    wait_until(lambda: tls_sentinels.role(before) == "slave", 60, "the sentinels demoted the old master")
    wait_until(lambda: _writes(client, "hvbot:tls-sentinel:after", "2"), 60, "hvbot writes to the promoted master")
    assert pool.get_master_address() == ("127.0.0.1", after)  # type: ignore[attr-defined]
    promoted = tls_sentinels.data(after)
    assert promoted.get("hvbot:tls-sentinel:after") == b"2"
    assert promoted.get("hvbot:tls-sentinel:before") == b"1"  # replicated over TLS before the failover
    assert client.get("hvbot:tls-sentinel:before") == b"1"
    client.close()


def test_without_a_client_certificate_the_sentinels_refuse_hvbot_and_its_error_says_why(
        tls_sentinels: SentinelLab, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(tls_sentinels, monkeypatch, client_cert=False)
    with pytest.raises(redis.ConnectionError) as refused:
        connect(settings, CHAT).ping()
    text = str(refused.value)
    assert text.startswith(f"No master found for {MASTER_NAME!r}"), text
    for port in tls_sentinels.sentinel_ports:
        assert (f"Redis at 127.0.0.1:{port} closed the TLS connection before its first answer: it probably "
                "requires a client certificate (tls-auth-clients yes)") in text, text
