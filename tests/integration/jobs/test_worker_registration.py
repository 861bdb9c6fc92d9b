"""An RQ worker that Redis forgot (a restart without data) registers itself again, and a dead one never does."""

from __future__ import annotations

import redis
from rq import Queue, Worker

from jobs.workers import HvbotSimpleWorker

QUEUE = "hvbot-registration-test"


def test_a_worker_lost_with_the_data_registers_again(redis_conn: redis.Redis) -> None:
    worker = HvbotSimpleWorker([QUEUE], connection=redis_conn, name="reg-test")
    assert worker.ensure_registered() is False  # not started: nothing to restore
    worker.register_birth()
    assert worker.ensure_registered() is False  # registered: nothing to do
    redis_conn.flushdb()  # what Redis looks like after a restart without its data
    worker.heartbeat()  # RQ's own heartbeat alone only writes last_heartbeat; ours also re-registers
    assert [w.name for w in Worker.all(connection=redis_conn)] == ["reg-test"]
    assert Worker.count(queue=Queue(QUEUE, connection=redis_conn)) == 1
    found = Worker.find_by_key(worker.key, connection=redis_conn)
    assert found is not None and found.hostname == worker.hostname and found.birth_date is not None
    redis_conn.flushdb()
    assert worker.ensure_registered() is True


def test_a_worker_that_registered_its_death_stays_unregistered(redis_conn: redis.Redis) -> None:
    worker = HvbotSimpleWorker([QUEUE], connection=redis_conn, name="reg-dead")
    worker.register_birth()
    worker.register_death()
    redis_conn.delete(worker.key)
    assert worker.ensure_registered() is False
    assert Worker.all(connection=redis_conn) == []
