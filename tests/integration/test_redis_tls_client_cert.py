"""hvbot against a TLS-only Redis that asks every client for a certificate (`tls-auth-clients yes`): with
HVBOT_REDIS_TLS_CERT_FILE / _KEY_FILE (a client certificate from the server's CA) it gets in; without one, or with
one from another CA, the server hangs up right after the handshake and hvbot's error says why in one line, the
line `hvbot check-config` prints, with no secret in it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bot.cli.check_config import check_redis
from bot.redis_client import CHAT, connect, describe
from bot.settings import Settings
from lab.tls import make_tls
from tests.support.tls_redis import RedisTlsUnsupported, TlsRedis

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def cert_redis() -> Iterator[TlsRedis]:
    try:
        server = TlsRedis.start(client_certs=True)
    except RedisTlsUnsupported as exc:
        pytest.skip(str(exc))
    with server:
        yield server


def test_a_client_certificate_from_the_servers_ca_gets_hvbot_in(
        cert_redis: TlsRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tls = cert_redis.tls
    assert tls.client_cert_file is not None and tls.client_key_file is not None
    password_file = tmp_path / "redis-password"
    password_file.write_text(cert_redis.password + "\n")
    env = {"REDIS_URL": cert_redis.url(), "HVBOT_REDIS_TLS_CA_FILE": str(tls.ca_file),
           "HVBOT_REDIS_TLS_CERT_FILE": str(tls.client_cert_file),
           "HVBOT_REDIS_TLS_KEY_FILE": str(tls.client_key_file), "HVBOT_REDIS_PASSWORD_FILE": str(password_file)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # read as every hvbot process reads them
    settings = Settings()
    client = connect(settings, CHAT)
    client.set("hvbot:tls:client-cert", "in")
    assert client.get("hvbot:tls:client-cert") == b"in"
    client.close()
    assert describe(settings) == (f"rediss://127.0.0.1:{cert_redis.port}/0 (TLS, server certificate verified against "
                                  f"{tls.ca_file}, client certificate {tls.client_cert_file})")
    with cert_redis.admin() as admin:
        assert admin.get("hvbot:tls:client-cert") == b"in"


def test_without_a_certificate_the_server_trusts_hvbot_is_refused_and_told_why(
        cert_redis: TlsRedis, tmp_path: Path) -> None:
    other = make_tls(tmp_path / "other", client=True)  # a client certificate from a CA the server does not trust
    base = Settings(redis_url=cert_redis.url(), redis_tls_ca_file=cert_redis.tls.ca_file,
                    redis_password=cert_redis.password)
    cases = [
        (base, "it probably requires a client certificate (tls-auth-clients yes) and none is configured: set "
               "HVBOT_REDIS_TLS_CERT_FILE and HVBOT_REDIS_TLS_KEY_FILE"),
        (base.model_copy(update={"redis_tls_cert_file": other.client_cert_file,
                                 "redis_tls_key_file": other.client_key_file}),
         f"it probably refused the client certificate {other.client_cert_file}"),
    ]
    for settings, why in cases:
        with pytest.raises(redis.ConnectionError) as refused:
            connect(settings, CHAT).ping()
        text = str(refused.value)
        assert text.startswith(f"Redis at 127.0.0.1:{cert_redis.port} closed the TLS connection before its first "
                               f"answer: {why}"), text
        assert "\n" not in text  # check-config prints an error's first line
        with pytest.raises(redis.ConnectionError, match="closed the TLS connection before its first answer"):
            check_redis(settings)
        assert cert_redis.password not in text + repr(refused.value) + describe(settings)
