"""The Redis-backed pacer: one write per second per channel across workers; 429 Retry-After honoured."""

import threading

import pytest
import redis

from bot.delivery.pacing import Pacer
from tests.support.fixtures_redis import emptied_db, redis_url_on_db


def db11() -> redis.Redis:
    """Another client on this part's own Redis database (11)."""
    return redis.Redis.from_url(redis_url_on_db(11))


@pytest.fixture
def r():
    with emptied_db(11) as client:
        yield client


def test_slots_are_one_second_apart_per_channel_with_explicit_time(r):
    p = Pacer(r, prefix="t:pace")
    first, second, third = (p.reserve("#ops", now=100.0) for _ in range(3))
    assert (first.wait_s, second.wait_s, third.wait_s) == (0.0, 1.0, 2.0)
    assert p.reserve("#oncall", now=100.0).wait_s == 0.0  # channels are independent
    assert p.reserve("#ops", now=110.0).wait_s == 0.0  # an idle channel is free at once


def test_two_workers_never_share_a_second_on_a_channel(r):
    # Two "workers" (threads, each with its own Redis connection) reserve on Redis' clock.
    slots: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(2)

    def worker() -> None:
        client = db11()
        pacer = Pacer(client, prefix="t:pace")
        start.wait()
        for _ in range(25):
            slot = pacer.reserve("#ops")
            with lock:
                slots.append(slot.at_ms)
        client.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(slots) == 50
    ordered = sorted(slots)
    gaps = [b - a for a, b in zip(ordered, ordered[1:])]
    assert min(gaps) >= 1000, "two writes were given slots less than a second apart"


def test_deferred_channel_waits_out_retry_after_for_every_worker(r):
    a, b = Pacer(r, prefix="t:pace"), Pacer(r, prefix="t:pace")
    a.reserve("#ops", now=200.0)
    a.defer("#ops", retry_after_s=30, now=200.5)  # a 429 with Retry-After: 30
    assert b.reserve("#ops", now=201.0).wait_s == pytest.approx(29.5)
    assert b.reserve("#ops", now=201.0).wait_s == pytest.approx(30.5)  # and still one per second after it
    assert b.reserve("#other", now=201.0).wait_s == 0.0
    # a shorter Retry-After never pulls the slot earlier
    a.defer("#ops", retry_after_s=1, now=201.0)
    assert b.reserve("#ops", now=201.0).wait_s == pytest.approx(31.5)


def test_wait_turn_sleeps_for_the_reserved_wait(r):
    p = Pacer(r, prefix="t:pace")
    slept: list[float] = []
    p.defer("#ops", retry_after_s=5)
    slot = p.wait_turn("#ops", sleep=slept.append)
    assert len(slept) == 1 and 0 < slept[0] <= 5.0 and slot.wait_s == slept[0]
