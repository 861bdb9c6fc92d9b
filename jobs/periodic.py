"""A daemon thread that repeats one round until stopped; each round returns how long to wait before the next.

The background loops of hvbot's processes (the abandoned-job watcher, the worker's registration keeper, the App
Home refresher, a recovery run's live card) differ only in their round, so start, stop and the waiting live here
once. A round handles its own failures and returns a longer wait while its dependency is down (jobs/backoff.py).
"""

from __future__ import annotations

import logging
import threading
from typing import Self

log = logging.getLogger("hvbot.periodic")


class Periodic:
    def __init__(self, name: str, first_wait_s: float, join_s: float = 5.0) -> None:
        self._first_wait_s, self._join_s = first_wait_s, join_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._join_s)

    def round(self) -> float:
        """One pass of the loop's work; the seconds to wait before the next pass."""
        raise NotImplementedError

    def _loop(self) -> None:
        wait = self._first_wait_s
        while not self._stop.wait(wait):
            try:
                wait = self.round()
            except Exception:  # noqa: BLE001 - a round's own bug must not end the loop for the process's lifetime
                log.exception("%s: a round failed", self._thread.name)
                wait = self._first_wait_s or 1.0
