"""Hostile requests through the real HTTP front (`hvbot serve` as a process, real Redis, the fake Slack Web API):
over 200 of them, plus hypothesis. Nothing a client sends is a 500, nothing leaves a traceback in the log, and
nothing runs twice: Slack's retries and exact replays of a signed request are acknowledged and dropped.

No worker runs here, so every job a request starts stays in the queue: the queue's length counts executions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.signature import SignatureVerifier

from bot.adapters.fake_slack import FakeSlack
from bot.adapters.http_checks import NO_REDIS
from jobs.keys import REPLAY_KEY
from tests.support.fixtures_redis import TEST_QUEUE, test_redis_url, wait_until
from tests.support.fixtures_slack import BOT_TOKEN, SIGNING_SECRET, HvbotProcess, free_port
from tests.support.hostile_payloads import (
    FAKE_SLACK_PORT,
    FORM,
    JSON,
    TEXTS,
    Case,
    as_payload,
    body_cases,
    click,
    header_cases,
    must_refuse,
    send,
    shape_cases,
    sign,
    signed,
    slash,
)

BARRIER = "refused a request without Slack's signature headers"  # the log line of an unsigned request
CASES = header_cases() + body_cases() + must_refuse() + shape_cases()


class Front:
    def __init__(self, port: int, proc: HvbotProcess, fake: FakeSlack, conn: redis.Redis) -> None:
        self.port, self.proc, self.fake, self.redis = port, proc, fake, conn

    def jobs(self) -> int:
        return int(self.redis.llen(f"rq:queue:{TEST_QUEUE}"))

    def wait_jobs(self, count: int) -> int:
        """Jobs are queued just after the ack (bot/intake.py): wait for `count`, then see that no more came."""
        wait_until(lambda: self.jobs() >= count, 15, f"{count} job(s) queued")
        self.log_so_far()
        return self.jobs()

    def log_so_far(self) -> list[str]:
        """Every log line written up to now: an unsigned request's log line marks the end (stderr is in order)."""
        before = sum(BARRIER in line for line in list(self.proc.lines))
        send(self.port, b"", (("Content-Type", FORM),))
        wait_until(lambda: sum(BARRIER in line for line in list(self.proc.lines)) > before, 15, "the log barrier")
        return list(self.proc.lines)


def _env(fake: FakeSlack, inventory: Path, redis_url: str) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake.api_url,
            "REDIS_URL": redis_url, "HVBOT_INVENTORY": str(inventory), "HVBOT_LOG_JSON": "false",
            "HVBOT_QUEUE": TEST_QUEUE, "HVBOT_CHANNEL_POST_INTERVAL_SECONDS": "0"}


@pytest.fixture(scope="module")
def front(lab_inventory_path: Path) -> Iterator[Front]:
    conn = redis.Redis.from_url(test_redis_url())
    conn.flushdb()
    port = free_port()
    with FakeSlack(port=FAKE_SLACK_PORT) as fake:  # the clicks' response_url points here
        proc = HvbotProcess(["serve", "--port", str(port), "--host", "127.0.0.1"],
                            _env(fake, lab_inventory_path, test_redis_url()), "listening on")
        try:
            proc.wait_ready()
            yield Front(port, proc, fake, conn)
        finally:
            proc.stop()
            conn.flushdb()


@pytest.fixture(autouse=True)
def clean_log_and_queue(front: Front) -> Iterator[None]:
    """Each test: the queue starts empty, and the test adds no traceback (nor any ERROR line) to the log."""
    front.redis.delete(f"rq:queue:{TEST_QUEUE}")
    start = len(front.log_so_far())
    yield
    added = front.log_so_far()[start:]
    assert [line for line in added if "Traceback" in line or "ERROR" in line or "[error" in line] == []


def test_the_suite_is_big_enough() -> None:
    assert len(CASES) + len(TEXTS) >= 200 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name[:60] for c in CASES])
def test_hostile_request_is_answered_without_a_500_and_runs_nothing(front: Front, case: Case) -> None:
    status, text = case.send(front.port)
    assert status in case.expect, (status, text)
    assert "Traceback" not in text and "Working on" not in text  # nothing was queued, not even after the ack
    if status == 400:
        assert text and "\n" not in text.strip() and len(text) < 400  # one sentence saying what is wrong
    assert front.jobs() == 0


@pytest.mark.parametrize("text", TEXTS, ids=[repr(t)[:40] for t in TEXTS])
def test_oversized_and_control_character_text_gets_the_grammars_clear_answer(front: Front, text: str) -> None:
    status, answer = signed("text", urlencode(slash(text)), (200,)).send(front.port)
    assert status == 200
    shown = json.loads(answer)["text"]
    assert any(p in shown for p in ("too long", "control characters", "Unknown command", "is not", "must be")), shown
    assert front.jobs() == 0


def test_the_same_signed_slash_command_three_times_starts_one_job(front: Front) -> None:
    body, headers = signed("vms", urlencode(slash("vms", response_url=front.fake.response_url("replayed"))),
                           (200,)).make()
    answers = [send(front.port, body, headers) for _ in range(3)]
    assert answers[0][0] == 200 and "Working on" in answers[0][1]
    assert answers[1:] == [(200, ""), (200, "")]
    assert front.wait_jobs(1) == 1
    signature = dict(headers)["X-Slack-Signature"]
    assert 0 < front.redis.ttl(REPLAY_KEY.format(str(signature).removeprefix("v0="))) <= 301  # the 5-minute window


def test_a_replay_carrying_a_retry_header_runs_nothing_either(front: Front) -> None:
    body, headers = signed("vms", urlencode(slash("vms", response_url=front.fake.response_url("retried"))),
                           (200,)).make()
    assert "Working on" in send(front.port, body, headers)[1]
    retry = (*headers, ("X-Slack-Retry-Num", "1"), ("X-Slack-Retry-Reason", "http_timeout"))
    assert send(front.port, body, retry) == (200, "")
    assert front.wait_jobs(1) == 1


def test_a_slack_retry_is_acknowledged_and_dropped(front: Front) -> None:
    case = signed("vms", urlencode(slash("vms")), (200,),
                  extra=(("X-Slack-Retry-Num", "1"), ("X-Slack-Retry-Reason", "http_timeout")))
    assert case.send(front.port) == (200, "")
    assert front.jobs() == 0


def test_the_same_text_signed_again_is_a_new_request(front: Front) -> None:
    """The cache is keyed on the signature: a user who types the command again (a new timestamp) is answered."""
    body = urlencode(slash("vms", response_url=front.fake.response_url("typed-twice")))
    for skew in (-1, 0):
        assert "Working on" in signed("vms", body, (200,), skew=skew).send(front.port)[1]
    assert front.wait_jobs(2) == 2


def test_a_replayed_click_answers_once(front: Front) -> None:
    url = front.fake.response_url("click-replayed")
    body, headers = signed("page", as_payload(click(response_url=url)), (200,)).make()
    assert [send(front.port, body, headers)[0] for _ in range(3)] == [200, 200, 200]
    front.fake.wait_for(lambda calls: [c for c in calls if c.path.endswith("/click-replayed")], 15)
    front.log_so_far()  # the lazy listeners of any replay would have answered by now
    assert len([c for c in front.fake.calls_to("response_url") if c.path.endswith("/click-replayed")]) == 1


def test_a_form_whose_text_contains_payload_is_still_read(front: Front) -> None:
    """Bolt reads any form containing the word "payload" as an empty body; the front hands it the right one."""
    status, answer = signed("text", urlencode(slash("vms payload")), (200,)).send(front.port)
    assert status == 200 and "Working on" in answer and front.wait_jobs(1) == 1


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20)
FIELDS = st.sampled_from(["command", "text", "user_id", "channel_id", "response_url", "type", "user", "channel",
                          "team", "actions", "container", "view", "authorizations", "event", "message", "enterprise"])


@st.composite
def hostile_bodies(draw: st.DrawFn) -> tuple[str, str]:
    """A slash command, a click or a view with some fields replaced by arbitrary JSON, or arbitrary JSON alone;
    sent as a JSON body, or as a form's `payload`."""
    base = draw(st.sampled_from([slash("help"), click(), {"type": "view_submission"}, {}]))
    body: Any = {**base, **draw(st.dictionaries(FIELDS, JSON_VALUES, max_size=4))}
    body = draw(st.sampled_from([body, draw(JSON_VALUES)]))
    if draw(st.booleans()):
        return json.dumps(body), JSON
    return as_payload(body), FORM


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(request=hostile_bodies())
def test_hypothesis_no_payload_is_a_500(front: Front, request: tuple[str, str]) -> None:
    body, content_type = request
    case = signed("hypothesis", body, (200, 400, 404), content_type=content_type)
    status, text = case.send(front.port)
    assert status in case.expect, (status, text, body)
    assert front.jobs() == 0


def test_without_redis_a_request_is_refused_clearly_and_runs_nothing(lab_inventory_path: Path) -> None:
    """Fail closed: with Redis unreachable a replay cannot be told from a first request, so nothing runs."""
    dead = f"redis://127.0.0.1:{free_port()}/13"  # nothing listens there
    port = free_port()
    with FakeSlack() as fake:
        proc = HvbotProcess(["serve", "--port", str(port), "--host", "127.0.0.1"],
                            _env(fake, lab_inventory_path, dead), "listening on")
        try:
            proc.wait_ready()
            command = signed("vms", urlencode(slash("vms")), (200,))
            assert command.send(port) == (200, NO_REDIS)  # a slash command's reply is shown to its user: say why
            assert signed("click", as_payload(click()), (503,)).send(port) == (503, NO_REDIS)
        finally:
            proc.stop()


def test_cases_sign_what_they_send() -> None:
    """The suite's own signing agrees with slack_sdk's, so a 401 above is the front's doing, not the suite's."""
    body = urlencode(slash("vms"))
    assert SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp="1", body=body) == sign(body.encode(), "1")
    assert all(isinstance(c.make()[0], bytes) for c in CASES)
