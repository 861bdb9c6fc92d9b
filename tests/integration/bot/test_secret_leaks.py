"""No planted secret reaches a log, a Slack call or Redis, on every error path we can drive with real processes:
`hvbot serve` + `hvbot worker` (+ `hvbot monitor`, `hvbot check-config`) against the lab and the fake Slack Web API.

Paths: an inventory url with a typo that leaves the password in it (`https//svc:PW@host/wsman`), a wrong password at
the lab, a host that hangs past the deadline, the jobs that fail on them, the replica sweep's host-down alert, and
check-config over both inventories. Afterwards every process's stderr/stdout, every fake Slack call (arguments,
answers, uploaded files) and every Redis key and value of the run's database are searched for the secrets."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from rq import Queue
from rq.serializers import JSONSerializer

from bot.adapters.fake_slack import FakeSlack
from jobs.monitor.sweep import run_host_sweep
from jobs.queue import enqueue
from tests.support.fixtures_redis import TEST_QUEUE, test_redis_url
from tests.support.fixtures_slack import HvbotProcess, free_port, post, signed_headers, slash_body

URL_PASSWORD = "Pl4nted-url-Pw-3e1"
WRONG_PASSWORD = "Pl4nted-wrong-Pw-8c2"
BOT_TOKEN = "xoxb-pl4nted-bot-token-9d4"
SIGNING_SECRET = "pl4nted-signing-secret-5a7"
TYPO_URL = f"https//svc:{URL_PASSWORD}@hv-typo.lab.local/wsman"


def _env(fake: FakeSlack, inventory: Path, **extra: str) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake.api_url,
            "REDIS_URL": test_redis_url(), "HVBOT_INVENTORY": str(inventory), "HVBOT_QUEUE": TEST_QUEUE,
            "HVBOT_CHANNEL_POST_INTERVAL_SECONDS": "0", "HVBOT_LOG_JSON": "false", "HVBOT_DEADLINE_S": "2", **extra}


class Run:
    """The processes of one inventory, and everything they printed."""

    def __init__(self, fake: FakeSlack, env: dict[str, str]) -> None:
        self.fake, self.env, self.port = fake, env, free_port()
        self.server = HvbotProcess(["serve", "--port", str(self.port), "--host", "127.0.0.1"], env, "listening on")
        self.worker = HvbotProcess(["worker", "--name", f"test-secrets-{self.port}"], env)
        self.outputs: list[str] = []

    def __enter__(self) -> Run:
        self.server.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
        self.worker.stop()
        self.outputs += self.server.lines + self.worker.lines

    def slash(self, text: str) -> str:
        """The final answer of a slash command (the response_url message that is not 'Working on')."""
        body = slash_body(text, response_url=self.fake.response_url(f"r{time.monotonic_ns()}"))
        status, ack = post(self.port, body, signed_headers(body, secret=SIGNING_SECRET))
        assert status == 200, ack
        job_id = re.search(r"job (hv[0-9a-f]+)", ack).group(1)  # type: ignore[union-attr]

        def final(calls: list[Any]) -> Any:
            for c in calls:
                text_ = json.dumps(c.args)
                if c.method == "response_url" and f"job {job_id}" in text_ and "Working on" not in str(
                        c.args.get("text", "")):
                    return c
            return None

        return json.dumps(self.fake.wait_for(final, timeout=60).args)

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        exe = Path(sys.executable).with_name("hvbot")
        done = subprocess.run([str(exe), *args], env={**os.environ, **self.env}, text=True,
                              capture_output=True, timeout=timeout)
        self.outputs += [done.stdout, done.stderr]
        return done


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as running:
        yield running


def _inventory(lab: Any, path: Path, change: Any) -> Path:
    data = lab.inventory()
    change(data["hosts"])
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _redis_dump(client: redis.Redis) -> bytes:
    out = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        value: Any = {
            "string": lambda: client.get(key), "hash": lambda: client.hgetall(key),
            "list": lambda: client.lrange(key, 0, -1), "set": lambda: client.smembers(key),
            "zset": lambda: client.zrange(key, 0, -1, withscores=True), "stream": lambda: client.xrange(key),
        }.get(kind, lambda: b"")()
        out.append(key + b" " + repr(value).encode())
    return b"\n".join(out)


def test_planted_secrets_never_reach_logs_slack_or_redis(make_lab, fake, redis_conn, tmp_path: Path) -> None:
    lab = make_lab()
    secrets = [URL_PASSWORD, WRONG_PASSWORD, BOT_TOKEN, SIGNING_SECRET, lab.password]
    hosts = list(lab.hosts)
    wrong, hung = hosts[0], hosts[1]
    outputs: list[str] = []

    # 1. A typo in one url: every job fails on the inventory, the monitor and check-config refuse it.
    typo = _inventory(lab, tmp_path / "typo.yml", lambda hs: hs.append(
        {"name": "hv-typo", "url": TYPO_URL, "auth": "basic", "username": "svc"}))
    with Run(fake, _env(fake, typo)) as run:
        answer = run.slash("vms")
        assert "hv-typo" in answer and "credentials" in answer and "password_env" in answer
        checked = run.cli("check-config")
        assert checked.returncode == 1 and "hv-typo" in checked.stdout and "credentials" in checked.stdout
        monitor = HvbotProcess(["monitor"], run.env)
        try:
            monitor.proc.wait(20)  # it refuses the inventory; a monitor that keeps retrying is stopped below
        except subprocess.TimeoutExpired:
            pass
        monitor.stop()
        run.outputs += monitor.lines
    outputs += run.outputs

    # 2. A wrong password at the lab and a host that hangs: per-host errors, failed sweeps, host-down alerts.
    def faults(hs: list[dict[str, Any]]) -> None:
        entry = next(h for h in hs if h["name"] == wrong)
        entry.pop("password")
        entry["password_env"] = "HVBOT_TEST_PLANTED_PW"

    inventory = _inventory(lab, tmp_path / "faults.yml", faults)
    lab.control(hung, "hung", {"on": True})
    try:
        with Run(fake, _env(fake, inventory, HVBOT_TEST_PLANTED_PW=WRONG_PASSWORD)) as run:
            answer = run.slash("vms")
            assert "2 with errors" in answer  # the wrong password and the hung host; their texts are in check-config
            queue = Queue(TEST_QUEUE, connection=redis_conn, serializer=JSONSerializer)
            for host in (wrong, hung):
                enqueue(queue, run_host_sweep, {"host": host, "rules": {"group_wait_s": 0}},
                        description=f"replica sweep of {host}")
            fake.wait_for(lambda calls: [c for c in calls if c.method == "chat.postMessage"
                                         and "unreachable" in json.dumps(c.args)], timeout=60)
            checked = run.cli("check-config")
            assert checked.returncode == 1
            assert f"FAIL host {wrong}: {wrong}: authentication failed" in checked.stdout
            assert f"FAIL host {hung}: {hung}: " in checked.stdout and "did not finish" in checked.stdout
    finally:
        lab.control(hung, "hung", {"on": False})
    outputs += run.outputs

    slack = json.dumps([[c.method, c.path, c.args, c.response] for c in fake.calls], default=str)
    slack += " ".join(content.decode(errors="replace") for content in fake.files.values())
    stored = _redis_dump(redis_conn).decode(errors="replace")
    logs = "".join(outputs)
    assert logs and slack and stored  # the sweep looked at something
    leaks = [(where, secret) for secret in secrets
             for where, text in (("logs", logs), ("slack", slack), ("redis", stored)) if secret in text]
    assert leaks == [], leaks
    assert TYPO_URL not in logs + slack + stored and "hv-typo.lab.local" not in logs + slack + stored
