"""hvbot against a Redis that speaks only TLS and wants a password: the one connection factory
(`bot.redis_client.connect`), the bot's runtime queueing a lookup that a real `hvbot worker` runs against the lab
and answers on the fake Slack, certificate verification that refuses a server it cannot trust, and
`hvbot check-config`. The password, given as a file, shows in no error, log line or description."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.connection import SSLConnection
from slack_bolt import App, BoltRequest

from bot.adapters.fake_slack import FakeSlack
from bot.app import build_app
from bot.redis_client import CHAT, connect, describe
from bot.runtime import build_runtime
from bot.settings import Settings
from lab.tls import make_tls
from tests.support.fixtures_redis import TEST_QUEUE
from tests.support.fixtures_slack import BOT_TOKEN, SIGNING_SECRET, HvbotProcess, signed_headers, slash_body
from tests.support.tls_redis import UNNAMED_ADDRESS, RedisTlsUnsupported, TlsRedis

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def tls_redis() -> Iterator[TlsRedis]:
    try:
        server = TlsRedis.start()
    except RedisTlsUnsupported as exc:
        pytest.skip(str(exc))
    with server:
        yield server


@pytest.fixture
def redis_env(tls_redis: TlsRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The Redis part of hvbot's environment: a rediss:// URL, the CA, the password as a file. Also set in this
    process, so that Settings() reads it as every hvbot process would."""
    password_file = tmp_path / "redis-password"
    password_file.write_text(tls_redis.password + "\n")
    env = {"REDIS_URL": tls_redis.url(), "HVBOT_REDIS_TLS_CA_FILE": str(tls_redis.tls.ca_file),
           "HVBOT_REDIS_PASSWORD_FILE": str(password_file)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with tls_redis.admin() as admin:
        admin.flushall()
    return env


def _hvbot_env(redis_env: dict[str, str], fake: FakeSlack, inventory: Path) -> dict[str, str]:
    return {**redis_env, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": fake.api_url, "HVBOT_INVENTORY": str(inventory), "HVBOT_QUEUE": TEST_QUEUE,
            "HVBOT_LOG_JSON": "false", "HVBOT_CHANNEL_POST_INTERVAL_SECONDS": "0"}


def _slash(app: App, text: str, response_url: str) -> str:
    body = slash_body(text, response_url=response_url)
    response = app.dispatch(BoltRequest(body=body, headers={k.lower(): [v] for k, v in signed_headers(body).items()}))
    assert response.status == 200
    data = json.loads(response.body)
    return str(data["text"]) + "\n" + json.dumps(data.get("blocks", []))


def _answer(calls: list[Any], path: str) -> Any:
    return next((c for c in calls if c.method == "response_url" and c.path == path
                 and not str(c.args.get("text", "")).startswith("Working on")), None)


def test_round_trip_over_tls_with_the_password_from_a_file(redis_env: dict[str, str], tls_redis: TlsRedis) -> None:
    settings = Settings()
    assert settings.secret("redis_password") == tls_redis.password
    client = connect(settings, CHAT)
    assert client.connection_pool.connection_class is SSLConnection  # the server has no plain-text port anyway
    client.set("hvbot:tls:probe", "ünïcode ok")
    assert client.get("hvbot:tls:probe") == "ünïcode ok".encode()
    assert describe(settings) == (f"rediss://127.0.0.1:{tls_redis.port}/0 "
                                  f"(TLS, server certificate verified against {tls_redis.tls.ca_file})")
    client.close()


def test_a_lookup_queued_over_tls_is_run_by_a_worker_and_answered(
        redis_env: dict[str, str], tls_redis: TlsRedis, fake_slack: FakeSlack, lab_inventory_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    worker = HvbotProcess(["worker", "--name", f"test-tls-{tls_redis.port}"],
                          _hvbot_env(redis_env, fake_slack, lab_inventory_path))
    try:
        settings = Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                            slack_api_url=fake_slack.api_url, queue=TEST_QUEUE, channel_post_interval_seconds=0)
        app = build_app(settings, runtime=build_runtime(settings))  # its Redis client comes from connect() too
        ack = _slash(app, "vms web*", fake_slack.response_url("tls"))
        job_id = re.search(r"job (hv[0-9a-f]+)", ack).group(1)  # type: ignore[union-attr]
        answer = fake_slack.wait_for(lambda calls: _answer(calls, "/response/tls"), timeout=90)
        text = json.dumps(answer.args)
        assert f"job {job_id}" in text and "web01" in text, text
        with tls_redis.admin() as admin:
            assert admin.hget(f"rq:job:{job_id}", "status") == b"finished"
    finally:
        worker.stop()
    logs = worker.output() + caplog.text
    assert "Traceback" not in logs, logs[-3000:]
    assert tls_redis.password not in logs


def test_a_server_whose_certificate_is_not_trusted_is_refused(tls_redis: TlsRedis, tmp_path: Path) -> None:
    other_ca = make_tls(tmp_path / "other").ca_file  # a CA of its own: it signed nothing the server shows
    untrusted = [
        Settings(redis_url=tls_redis.url(), redis_tls_ca_file=other_ca, redis_password=tls_redis.password),
        Settings(redis_url=tls_redis.url(), redis_password=tls_redis.password),  # the system CAs only
    ]
    for settings in untrusted:
        with pytest.raises(redis.ConnectionError) as refused:
            connect(settings, CHAT).ping()
        assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value) and f":{tls_redis.port}" in str(refused.value)
        assert tls_redis.password not in str(refused.value) + repr(refused.value) + describe(settings)
    wrong_name = Settings(redis_url=tls_redis.url(host=UNNAMED_ADDRESS), redis_tls_ca_file=tls_redis.tls.ca_file,
                          redis_password=tls_redis.password)
    with pytest.raises(redis.ConnectionError, match=f"not valid for '{UNNAMED_ADDRESS}'"):
        connect(wrong_name, CHAT).ping()
    # The same client with verification off gets through: what refused it above was the certificate check.
    unverified = Settings(redis_url=tls_redis.url(), redis_tls_ca_file=other_ca, redis_tls_verify=False,
                          redis_password=tls_redis.password)
    assert connect(unverified, CHAT).ping()


def test_a_wrong_password_is_refused_without_showing_either_password(tls_redis: TlsRedis) -> None:
    wrong = "not-the-password-" + "9" * 12
    settings = Settings(redis_url=tls_redis.url(), redis_tls_ca_file=tls_redis.tls.ca_file, redis_password=wrong)
    with pytest.raises(redis.AuthenticationError) as refused:
        connect(settings, CHAT).ping()
    text = str(refused.value) + repr(refused.value) + describe(settings)
    assert wrong not in text and tls_redis.password not in text


def _check_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("hvbot")
    return subprocess.run([str(exe), "check-config"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_check_config_reaches_redis_over_tls_and_says_so(
        redis_env: dict[str, str], tls_redis: TlsRedis, fake_slack: FakeSlack, lab_inventory_path: Path,
        tmp_path: Path) -> None:
    env = _hvbot_env(redis_env, fake_slack, lab_inventory_path)
    result = _check_config(env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert (f"ok   redis: PING answered: rediss://127.0.0.1:{tls_redis.port}/0 (TLS, server certificate verified "
            f"against {tls_redis.tls.ca_file})") in result.stdout.splitlines(), result.stdout
    assert "redis persistence:" in result.stdout  # the checks that read Redis ran over TLS too
    assert tls_redis.password not in output
    refused = _check_config({**env, "HVBOT_REDIS_TLS_CA_FILE": str(make_tls(tmp_path / "other").ca_file)})
    line = next(line for line in refused.stdout.splitlines() if line.startswith("FAIL redis:"))
    assert "CERTIFICATE_VERIFY_FAILED" in line and refused.returncode == 1
    assert tls_redis.password not in refused.stdout + refused.stderr
