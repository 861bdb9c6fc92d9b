"""Lookups are acked before they are queued (bot/intake.py): batched, in order, and nothing lost in between."""

from __future__ import annotations

import json

import redis
from redis.backoff import NoBackoff
from redis.client import Pipeline
from redis.retry import Retry

from bot.fake_slack import FakeSlack
from bot.intake import LOOP_STEP, Intake
from tests.fixtures_slack import free_port


def _dead_redis() -> redis.Redis:
    return redis.Redis(port=free_port(), socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))


def _told(fake: FakeSlack, count: int) -> list[str]:
    calls = fake.wait_for(lambda calls: len([c for c in calls if c.method == "response_url"]) >= count
                          and [c for c in calls if c.method == "response_url"], 10)
    return sorted(json.dumps(c.args) for c in calls)


def test_redis_lost_after_the_ack_is_told_through_the_response_url(fake_slack: FakeSlack) -> None:
    intake = Intake(_dead_redis())
    intake._mark(True)  # the last check said Redis was up; it died since

    intake.submit(lambda pipe: pipe.rpush("t:intake", 1), fake_slack.response_url("lost"), "ips 10.0.4.17")
    intake.drain()
    text = _told(fake_slack, 1)[0]
    assert "ips 10.0.4.17" in text and "was not started" in text and "replace_original" in text
    assert intake.redis_up() is False  # the next request is answered in its ack


def test_every_request_of_a_failed_batch_is_told(fake_slack: FakeSlack) -> None:
    intake = Intake(_dead_redis())
    intake.attach(lambda: None)  # loop mode: all five wait, then go in one batch
    for i in range(5):
        intake.submit(lambda pipe: pipe.rpush("t:intake", 1), fake_slack.response_url(f"r{i}"), f"ips 10.0.4.{i}")
    intake.run()
    intake.drain()
    told = _told(fake_slack, 5)
    assert len(told) == 5 and all("was not started" in t and "Redis" in t for t in told)
    assert [f"10.0.4.{i}" in t for i, t in enumerate(told)] == [True] * 5


def test_redis_known_down_is_rechecked_and_recovers(redis_conn: redis.Redis) -> None:
    intake = Intake(redis_conn)
    intake._mark(False)
    intake._checked_at = 0.0  # long ago: the next request pings again
    assert intake.redis_up() is True


def test_queued_lookups_are_all_enqueued_in_order_after_drain(redis_conn: redis.Redis) -> None:
    intake = Intake(redis_conn)
    for i in range(120):
        intake.submit(lambda pipe, i=i: pipe.rpush("t:intake", i), "", f"ips {i}")
    intake.drain()
    assert [int(v) for v in redis_conn.lrange("t:intake", 0, -1)] == list(range(120))


def test_a_loop_queues_a_burst_in_batches_and_is_woken_once_per_burst(redis_conn: redis.Redis) -> None:
    wakes: list[int] = []
    intake = Intake(redis_conn)
    intake.attach(lambda: wakes.append(1))
    for i in range(120):
        intake.submit(lambda pipe, i=i: pipe.rpush("t:intake", i), "", f"ips {i}")
    assert len(wakes) == 1 and intake.pending()
    steps = 0
    while intake.pending():
        intake.run()  # one transaction of at most LOOP_STEP requests
        steps += 1
    assert steps == -(-120 // LOOP_STEP)
    assert [int(v) for v in redis_conn.lrange("t:intake", 0, -1)] == list(range(120))
    intake.submit(lambda pipe: pipe.rpush("t:intake", 120), "", "ips 120")
    assert len(wakes) == 2  # the loop had nothing left, so it is woken again
    intake.flush()
    assert redis_conn.llen("t:intake") == 121


def test_one_refused_request_does_not_sink_its_batch(redis_conn: redis.Redis, fake_slack: FakeSlack) -> None:
    redis_conn.set("t:string", "x")
    intake = Intake(redis_conn)
    intake.attach(lambda: None)
    adds = [lambda pipe: pipe.rpush("t:list", "a"), lambda pipe: pipe.rpush("t:string", "b"),  # WRONGTYPE
            lambda pipe: pipe.rpush("t:list", "c")]
    for name, add in zip("abc", adds, strict=True):
        intake.submit(add, fake_slack.response_url(name), f"ips {name}")
    intake.run()
    intake.drain()
    assert redis_conn.lrange("t:list", 0, -1) == [b"a", b"c"]
    told = _told(fake_slack, 1)
    assert len(told) == 1 and "`ips b` was not started" in told[0]


def test_a_bug_in_one_request_is_reported_and_the_others_are_queued(
    redis_conn: redis.Redis, fake_slack: FakeSlack
) -> None:
    def broken(pipe: Pipeline) -> None:
        pipe.rpush("t:list", "half")  # added, then the request fails: its half must not be sent
        raise ValueError("bug")

    intake = Intake(redis_conn)
    intake.submit(lambda pipe: pipe.rpush("t:list", "a"), fake_slack.response_url("a"), "ips a")
    intake.submit(broken, fake_slack.response_url("b"), "ips b")
    intake.submit(lambda pipe: pipe.rpush("t:list", "c"), fake_slack.response_url("c"), "ips c")
    intake.drain()
    assert redis_conn.lrange("t:list", 0, -1) == [b"a", b"c"]
    told = _told(fake_slack, 1)
    assert len(told) == 1 and "`ips b` was not started" in told[0] and "internal error" in told[0]
