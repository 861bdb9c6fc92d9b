"""The VM locks one recovery run holds: taken per VM (jobs.locks.VmLock, owner = the run's approval id),
renewed together by one thread, released when the VM's part is over."""

from __future__ import annotations

import threading
from typing import Self

import redis

from jobs.locks import VmLock


class RunLocks:
    """Every VM lock of a run, renewed every third of their TTL by one background thread."""

    def __init__(self, connection: redis.Redis, owner: str, ttl_ms: int) -> None:
        self._redis, self.owner, self.ttl_ms = connection, owner, ttl_ms
        self._held: dict[str, VmLock] = {}
        self._lost: set[str] = set()
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_loop, name="hvbot-recovery-locks", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.ttl_ms / 1000)
        with self._mutex:
            held, self._held = list(self._held.values()), {}
        for lock in held:
            lock.release()

    def acquire(self, vm: str) -> str | None:
        """Take the VM's lock; None when taken, else who holds it (one sentence's worth)."""
        lock = VmLock(self._redis, vm, ttl_ms=self.ttl_ms)
        if not lock.acquire(self.owner):
            return lock.holder() or "someone else"
        with self._mutex:
            self._held[vm] = lock
            self._lost.discard(vm)
        return None

    def held(self, vm: str) -> bool:
        """False once a renewal failed (the lock lapsed and may be someone else's): stop touching the VM."""
        with self._mutex:
            return vm in self._held and vm not in self._lost

    def release(self, vm: str) -> None:
        with self._mutex:
            lock = self._held.pop(vm, None)
        if lock is not None:
            lock.release()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl_ms / 3000):
            with self._mutex:
                held = list(self._held.items())
            for vm, lock in held:
                if not lock.renew():
                    with self._mutex:
                        self._lost.add(vm)
