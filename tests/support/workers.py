"""In-process RQ workers for tests: run queues dry in this process, and leave no thread behind.

RQ's worker listens for commands (stop-job, shutdown) on a pub/sub thread that waits up to 60 s per read, and its
teardown unsubscribes *before* it stops that thread. The thread usually sees the UNSUBSCRIBE reply first, goes
back to wait up to 60 s for a new subscription, and teardown's join(timeout=1) gives up after a second: every
burst cost a second and left a thread asleep for a minute (twenty trials of a failover test spent ~80 s so).
"""

from __future__ import annotations

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from jobs.workers import HvbotSimpleWorker

# How often the command listener looks at its stop flag; a worker's teardown waits at most about this long.
LISTENER_POLL_S = 0.05


class BurstWorker(HvbotSimpleWorker):
    """hvbot's simple worker (as `hvbot worker --simple` runs it) whose command listener polls briefly, so its
    teardown joins the listener instead of abandoning it."""

    def subscribe(self) -> None:
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(sleep_time=LISTENER_POLL_S, daemon=True,
                                                       exception_handler=self._pubsub_exception_handler)

    def unsubscribe(self) -> None:
        thread = self.pubsub_thread
        super().unsubscribe()
        if thread is not None:
            thread.join()  # bounded: the listener sees its stop flag within LISTENER_POLL_S


def work_dry(queue: Queue | str, connection: redis.Redis) -> BurstWorker:
    """Run every job on `queue` in this process until it is empty (RQ burst mode); returns the finished worker."""
    worker = BurstWorker([queue], connection=connection, serializer=JSONSerializer)
    worker.work(burst=True)
    return worker
