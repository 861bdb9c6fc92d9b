"""Redis settings and the one connection factory: Sentinel addresses, passwords from files, TLS options, and the
compose files' Redis wiring (durable by default; the Sentinel variant names settings that exist)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from redis.sentinel import SentinelConnectionPool

from bot.redis_client import CHAT, WORKER, connect, describe, tls_kwargs
from bot.settings import Settings

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def test_sentinels_are_host_port_pairs_with_a_clear_message() -> None:
    settings = Settings(redis_sentinels="a:26379, b:26380,[::1]:26381")
    assert settings.sentinel_addresses() == [("a", 26379), ("b", 26380), ("::1", 26381)]
    with pytest.raises(ValidationError) as err:
        Settings(redis_sentinels="redis-a,redis-b:x")
    assert "is not host:port" in str(err.value)


def test_secrets_come_from_files_and_never_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pw").write_text("redis-secret-123\n")
    (tmp_path / "spw").write_text("sentinel-secret-456\n")
    monkeypatch.setenv("HVBOT_REDIS_PASSWORD_FILE", str(tmp_path / "pw"))
    monkeypatch.setenv("HVBOT_REDIS_SENTINEL_PASSWORD_FILE", str(tmp_path / "spw"))
    monkeypatch.setenv("HVBOT_REDIS_SENTINELS", "s1:26379,s2:26379,s3:26379")
    settings = Settings()
    assert settings.secret("redis_password") == "redis-secret-123"
    assert settings.secret("redis_sentinel_password") == "sentinel-secret-456"
    client = connect(settings, WORKER)  # nothing connects until the first command
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "hvbot"
    assert pool.connection_kwargs["password"] == "redis-secret-123"
    assert pool.connection_kwargs["retry"]._retries == WORKER.retries
    sentinel_kwargs = pool.sentinel_manager.sentinel_kwargs
    assert sentinel_kwargs["password"] == "sentinel-secret-456"
    # each sentinel is asked once per try of the master's own retry, not ten times more (redis-py's default)
    assert sentinel_kwargs["retry"].get_retries() == 0
    text = describe(settings) + repr(settings)
    assert "redis-secret-123" not in text and "sentinel-secret-456" not in text and "s1:26379" in text


def test_plain_url_gets_the_profile_and_tls_options(tmp_path: Path) -> None:
    settings = Settings(redis_url="redis://cache:6380/2", redis_tls=True, redis_tls_ca_file=tmp_path / "ca.pem")
    kwargs = connect(settings, CHAT).connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("cache", 6380, 2)
    assert kwargs["ssl_ca_certs"] == str(tmp_path / "ca.pem") and kwargs["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    assert kwargs["socket_timeout"] == CHAT.socket_timeout_s
    assert tls_kwargs(Settings(redis_url="redis://cache:6379/0")) == {}
    unverified = tls_kwargs(Settings(redis_url="rediss://cache:6379/0", redis_tls_verify=False))
    assert unverified["ssl_cert_reqs"] == ssl.CERT_NONE and unverified["ssl_check_hostname"] is False
    assert describe(Settings(redis_url="redis://:pw-123@cache:6379/0")) == "redis://cache:6379/0"


def test_describe_says_whether_tls_verifies_the_server(tmp_path: Path) -> None:
    upgraded = Settings(redis_url="redis://:pw-123@cache:6380/2", redis_tls=True, redis_tls_ca_file=tmp_path / "ca.pem")
    assert describe(upgraded) == f"rediss://cache:6380/2 (TLS, server certificate verified against {tmp_path}/ca.pem)"
    system = describe(Settings(redis_url="rediss://cache:6379/0", redis_tls_cert_file=tmp_path / "me.pem"))
    assert system == ("rediss://cache:6379/0 (TLS, server certificate verified against the system CAs, "
                      f"client certificate {tmp_path}/me.pem)")
    unverified = describe(Settings(redis_url="rediss://cache:6379/0", redis_tls_verify=False))
    assert "NOT verified (HVBOT_REDIS_TLS_VERIFY=false)" in unverified
    sentinels = describe(Settings(redis_sentinels="s1:26379", redis_tls=True))
    assert sentinels == ("master 'hvbot' of sentinels s1:26379 (db 0, TLS, server certificate verified against "
                         "the system CAs)")


def test_compose_redis_is_durable_and_the_sentinel_variant_uses_real_settings() -> None:
    base = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert "--appendonly" in base["services"]["redis"]["command"]
    variant = yaml.safe_load((DEPLOY / "docker-compose.sentinel.yml").read_text())
    env = variant["services"]["worker"]["environment"]
    settings = Settings(redis_sentinels=env["HVBOT_REDIS_SENTINELS"], redis_master_name=env["HVBOT_REDIS_MASTER_NAME"])
    assert [host for host, _ in settings.sentinel_addresses()] == [f"sentinel-{n}" for n in (1, 2, 3)]
    assert all(f"sentinel-{n}" in variant["services"] for n in (1, 2, 3))
    assert "--standby" in variant["services"]["monitor-standby"]["command"]
    assert "sentinel monitor hvbot" in variant["x-sentinel"]["command"][0]
