"""A listener pool for `build_app(listener_executor=...)` that can hold what is handed to it: work meant to run
after an ack (`Runtime.after_ack`, lazy listeners) is then seen not to have run before the ack, with no timing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from bot.adapters.fake_slack import Call, FakeSlack


class HeldPool(ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(max_workers=4, thread_name_prefix="held-listener")
        self._lock = threading.Lock()
        self._holding = False
        self._held: list[tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []

    def hold(self) -> None:
        with self._lock:
            self._holding = True

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:  # type: ignore[override]
        with self._lock:
            if self._holding:
                future: Future[Any] = Future()
                self._held.append((future, fn, args, kwargs))
                return future
        return super().submit(fn, *args, **kwargs)

    def held(self) -> int:
        with self._lock:
            return len(self._held)

    def release(self) -> None:
        """Stop holding and run what was held, in order, in the caller's thread."""
        with self._lock:
            held, self._held, self._holding = self._held, [], False
        for future, fn, args, kwargs in held:
            try:
                future.set_result(fn(*args, **kwargs))
            except Exception as exc:  # noqa: BLE001 - handed to the future, as a pool would
                future.set_exception(exc)


def drawn_after_the_ack(fake: FakeSlack, pool: HeldPool, click: Callable[[], object]) -> list[Call]:
    """Click with the pool held and Slack's next chat.update a 429: nothing is drawn by the time the click is
    answered; once released, the card is drawn after waiting the 429 out. Returns those chat.update calls."""
    before = len(fake.calls_to("chat.update"))
    fake.fail_next("chat.update", status=429, retry_after=1)
    pool.hold()
    click()
    assert fake.calls_to("chat.update")[before:] == [] and pool.held() == 1, "the card was drawn before the ack"
    pool.release()
    return fake.calls_to("chat.update")[before:]
