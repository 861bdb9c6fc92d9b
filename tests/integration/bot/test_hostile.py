"""A table of malformed or hostile /hyperv commands: each gets a clear answer, none crashes a handler,
none is enqueued, and none reaches a Hyper-V host (the lab's command log does not grow)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from slack_bolt import App, BoltRequest

from bot.adapters.fake_slack import FakeSlack
from bot.app import build_app
from bot.runtime import build_runtime
from bot.settings import Settings
from jobs import ports as reporting
from tests.support.fixtures_redis import TEST_QUEUE
from tests.support.fixtures_slack import BOT_TOKEN, SIGNING_SECRET, signed_headers, slash_body

HOSTILE = [
    "ips; Remove-VM *", "ips 10.0.4.17; Stop-VM web01", "vms $(Get-Process)", "vms `whoami`",
    "memory web01 | Remove-VM", "checkpoints", "checkpoints a b", "cancel", "cancel ../../etc/passwd",
    "audit -1", "audit 99999999999999999999", "ips --host", "ips --host hv-a1 --host hv-b1", "ips --bogus x",
    "x" * 2000, "ips \x00", 'ips "unterminated', "ips " + " ".join(["10.0.0.1"] * 21), "ips <@U123>",
    "ips <http://evil.example|$(x)>", "vms *;*", "vms ${env:PATH}", "teaming @(1,2)", "HELP ME",
    "ips\t10.0.4.17\n--host", "ips 10.0.4.17 --host $(hostname)", "ips --host ../../x", "vms -Force",
    "memory -Name *", "\U0001f680", "\uff49\uff50\uff53", "ips 10.0.4.17 --here extra --host", "jobs now",
    "help nonexist", "cancel hv1234;DROP", "checkpoints web01 --host", "audit 1 2", "vms " + "a" * 101,
    "memory web01\nStop-VM web01", "--host hv-a1", "ips --HOST", "vms --here=yes", "ips ''", 'vms ""',
    "ips 10.0.4.17 --host hv-a1 --here --host", "memory <mailto:a@b.example|a@b.example>",
    "teaming web01 web02", "vms %00", "ips 10.0.4.17 \u2010\u2010host hv-a1", "/hyperv ips", "ips \\\\server\\share",
    "cancel " + "a" * 65, "checkpoints 'web01' 'web02' 'web03'", "vms ' leading-space'", "memory web01\x1b[31m",
    "ips 10.0.4.17 --host hv-a1\u200b", "audit ten", "checkpoints --here", "ips --here --host",
]
CLEAR = ("Unknown command", "needs", "takes", "is not a valid", "is not a host name", "too long",
         "control characters", "Unbalanced", "At most", "No command", "N must be", "has no option",
         "is given twice", "not a job id")


@pytest.fixture
def app(redis_conn: redis.Redis, lab_inventory_path: Path, fake_slack: FakeSlack) -> Iterator[App]:
    settings = Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET, queue=TEST_QUEUE,
                        slack_api_url=fake_slack.api_url, redis_url="redis://unused", inventory=lab_inventory_path)
    runtime = build_runtime(settings, connection=redis_conn)
    reporting.install(runtime.reporter)
    yield build_app(settings, runtime=runtime)
    reporting.install(reporting.NoReporter())


def test_table_is_big_enough() -> None:
    assert len(HOSTILE) >= 50 and len(set(HOSTILE)) == len(HOSTILE)


@pytest.mark.parametrize("text", HOSTILE, ids=[repr(t)[:40] for t in HOSTILE])
def test_hostile_command_gets_clear_answer_and_runs_nothing(app: App, redis_conn: redis.Redis, lab, text: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    log_before = len(lab.command_log())
    body = slash_body(text)
    response = app.dispatch(BoltRequest(body=body, headers={k.lower(): [v] for k, v in signed_headers(body).items()}))
    assert response.status == 200
    answer = json.loads(response.body)["text"]
    assert any(phrase in answer for phrase in CLEAR), answer
    assert "Traceback" not in answer and len(answer) < 600
    assert app.runtime.queue.count == 0  # type: ignore[attr-defined]  # nothing for a worker to run
    assert len(lab.command_log()) == log_before
    outcomes = [e.outcome for e in app.runtime.audit.recent(5)]  # type: ignore[attr-defined]
    assert outcomes[0] in ("invalid", "refused")
