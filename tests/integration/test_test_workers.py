"""The tests' in-process RQ worker: each burst ends with its command listener thread, not a minute later."""

from __future__ import annotations

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from tests.support.fixtures_redis import TEST_QUEUE
from tests.support.workers import work_dry


def test_a_burst_worker_leaves_no_listener_thread_behind(redis_conn: redis.Redis) -> None:
    queue = Queue(f"{TEST_QUEUE}-burst", connection=redis_conn, serializer=JSONSerializer)
    for _ in range(5):
        queue.enqueue("builtins.len", [1, 2])
        worker = work_dry(queue, redis_conn)
        assert worker.pubsub_thread is not None
        assert not worker.pubsub_thread.is_alive(), "the listener thread outlived its worker"
    assert queue.finished_job_registry.count == 5
