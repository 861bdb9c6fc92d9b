"""Lookups are acked before they are queued (bot/intake.py): nothing may be lost in between."""

from __future__ import annotations

import json

import redis

from bot.adapters.fake_slack import FakeSlack
from bot.intake import Intake
from tests.support.fixtures_slack import free_port


def _dead_redis() -> redis.Redis:
    return redis.Redis(port=free_port(), socket_connect_timeout=0.5)


def test_redis_lost_after_the_ack_is_told_through_the_response_url(fake_slack: FakeSlack) -> None:
    intake = Intake(_dead_redis())
    intake._mark(True)  # the last check said Redis was up; it died since

    def enqueue() -> None:
        raise redis.ConnectionError("Redis went away")

    intake.submit(enqueue, fake_slack.response_url("lost"), "ips 10.0.4.17")
    intake.drain()
    told = fake_slack.wait_for(lambda calls: [c for c in calls if c.method == "response_url"], 10)
    text = json.dumps(told[0].args)
    assert "ips 10.0.4.17" in text and "was not started" in text and "replace_original" in text
    assert intake.redis_up() is False  # the next request is answered in its ack


def test_redis_known_down_is_rechecked_and_recovers(redis_conn: redis.Redis) -> None:
    intake = Intake(redis_conn)
    intake._mark(False)
    intake._checked_at = 0.0  # long ago: the next request pings again
    assert intake.redis_up() is True


def test_queued_lookups_are_all_enqueued_after_drain(redis_conn: redis.Redis) -> None:
    intake, done = Intake(redis_conn), []
    for i in range(50):
        intake.submit(lambda i=i: done.append(redis_conn.rpush("t:intake", i)), "", f"ips {i}")
    intake.drain()
    assert redis_conn.llen("t:intake") == 50 and len(done) == 50
