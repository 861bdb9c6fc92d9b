"""In-process RQ workers for tests: run queues dry in this process, and leave no thread behind.

RQ's command listener would outlive each burst by up to a minute and cost a second per burst (twenty trials of a
failover test spent ~80 s so); `jobs.workers.PolledCommands` makes the teardown join it.
"""

from __future__ import annotations

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from jobs.workers import HvbotSimpleWorker, PolledCommands


class BurstWorker(PolledCommands, HvbotSimpleWorker):
    """hvbot's simple worker (as `hvbot worker --simple` runs it) whose command listener polls briefly, so its
    teardown joins the listener instead of abandoning it."""


def work_dry(queue: Queue | str, connection: redis.Redis) -> BurstWorker:
    """Run every job on `queue` in this process until it is empty (RQ burst mode); returns the finished worker."""
    worker = BurstWorker([queue], connection=connection, serializer=JSONSerializer)
    worker.work(burst=True)
    return worker
