"""Backup windows in real Redis: due after end, resume exactly once across processes, backoff and alert."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from jobs.backup.window import (
    HousekeepingReport,
    PauseSide,
    Window,
    WindowConfig,
    WindowError,
    WindowStatus,
    WindowStore,
)
from tests.support.fixtures_redis import emptied_db, redis_url_on_db

T0 = datetime(2026, 5, 4, 22, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _client() -> redis.Redis:
    """Another client on this module's own database, as a separate process would have."""
    return redis.Redis.from_url(redis_url_on_db(10))


@pytest.fixture
def r() -> Iterator[redis.Redis]:
    with emptied_db(10) as client:
        yield client


@pytest.fixture
def store(r: redis.Redis) -> WindowStore:
    return WindowStore(r, prefix="test:backup")


def open_window(store: WindowStore, vm: str = "web01", hours: float = 2) -> Window:
    return store.open(vm, "hv-a1", None, T0, T0 + timedelta(hours=hours), "U123")


class Recorder:
    """A resume function that records calls and fails while `failing` is set."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()
        self.failing = False

    def __call__(self, window: Window) -> None:
        with self.lock:
            self.calls.append(window.vm)
        if self.failing:
            raise RuntimeError("Resume-VMReplication failed:\n  host hv-a1 did not answer")


def test_open_defaults_to_primary_side_and_is_readable(store: WindowStore) -> None:
    window = open_window(store)
    assert window.side is PauseSide.PRIMARY
    assert store.get("web01") == window
    replica_store = WindowStore(store.redis, "test:other", WindowConfig(pause_side=PauseSide.REPLICA))
    assert open_window(replica_store).side is PauseSide.REPLICA
    assert store.open("db01", "hv-b1", "replica", T0, T0 + HOUR, "U1").side is PauseSide.REPLICA


def test_open_refuses_bad_windows(store: WindowStore) -> None:
    open_window(store)
    with pytest.raises(WindowError, match="already has an open backup window"):
        open_window(store)
    with pytest.raises(WindowError, match="must end after"):
        store.open("x", "h", None, T0, T0, "U1")
    with pytest.raises(WindowError, match="at most 12 h"):
        store.open("x", "h", None, T0, T0 + 13 * HOUR, "U1")
    with pytest.raises(WindowError, match="timezone-aware"):
        store.open("x", "h", None, datetime(2026, 5, 4), datetime(2026, 5, 5), "U1")


def test_in_window_from_start_until_resumed(store: WindowStore) -> None:
    open_window(store)
    assert not store.is_in_window("web01", T0 - timedelta(seconds=1))
    assert store.is_in_window("web01", T0)
    assert store.is_in_window("web01", T0 + 3 * HOUR)  # overdue but still paused: housekeeping's job
    store.mark_resumed("web01", T0 + 3 * HOUR)
    assert not store.is_in_window("web01", T0 + 3 * HOUR)
    assert not store.is_in_window("nothing", T0)


def test_due_for_resume_only_after_end(store: WindowStore) -> None:
    open_window(store, "web01", hours=1)
    open_window(store, "web02", hours=2)
    assert store.due_for_resume(T0 + timedelta(minutes=59)) == []
    assert [w.vm for w in store.due_for_resume(T0 + HOUR)] == ["web01"]
    assert sorted(w.vm for w in store.due_for_resume(T0 + 2 * HOUR)) == ["web01", "web02"]


def test_housekeeping_resumes_once_and_keeps_history(store: WindowStore) -> None:
    open_window(store)
    resume = Recorder()
    report = store.housekeeping(T0 + 2 * HOUR, resume)
    assert report.resumed == ["web01"] and resume.calls == ["web01"]
    assert store.housekeeping(T0 + 3 * HOUR, resume).resumed == []
    assert resume.calls == ["web01"]
    window = store.get("web01")
    assert window is not None and window.status is WindowStatus.RESUMED
    assert window.resumed_at == T0 + 2 * HOUR
    assert 0 < store.redis.ttl("test:backup:window:web01") <= store.config.history_ttl_s
    open_window(store)  # a new window may be opened once the last one was resumed


class BarrierStore(WindowStore):
    """Every process reads the full due list before any of them resumes: the worst interleaving."""

    def __init__(self, client: redis.Redis, barrier: threading.Barrier) -> None:
        super().__init__(client, prefix="test:backup")
        self.barrier = barrier

    def due_for_resume(self, now: datetime) -> list[Window]:
        due = super().due_for_resume(now)
        self.barrier.wait(timeout=30)
        return due


def test_housekeeping_from_three_processes_resumes_each_window_exactly_once(store: WindowStore) -> None:
    vms = [f"vm{n:02d}" for n in range(20)]
    for vm in vms:
        open_window(store, vm)
    resume, barrier = Recorder(), threading.Barrier(3)
    reports: list[HousekeepingReport] = []

    def run() -> None:
        client = _client()  # its own connection, as a separate process would have
        reports.append(BarrierStore(client, barrier).housekeeping(T0 + 2 * HOUR, resume))
        client.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(reports) == 3
    assert Counter(resume.calls) == Counter(vms)
    assert sorted(vm for rep in reports for vm in rep.resumed) == vms
    assert sum(len(rep.skipped) for rep in reports) == 2 * len(vms)
    assert all(store.get(vm).status is WindowStatus.RESUMED for vm in vms)  # type: ignore[union-attr]


def test_window_held_by_another_process_is_left_to_it(store: WindowStore) -> None:
    open_window(store)
    resume = Recorder()
    with store.lease("web01") as held:
        assert held
        other = WindowStore(_client(), prefix="test:backup")
        assert other.housekeeping(T0 + 2 * HOUR, resume).skipped == ["web01"]
    assert resume.calls == []
    assert other.housekeeping(T0 + 2 * HOUR, resume).resumed == ["web01"]


def test_restart_during_window_still_resumes_after_end(store: WindowStore) -> None:
    open_window(store)  # the worker that paused replication then dies; the bot restarts
    restarted = WindowStore(_client(), prefix="test:backup")
    resume = Recorder()
    assert restarted.housekeeping(T0 + HOUR, resume).resumed == []
    assert restarted.housekeeping(T0 + 2 * HOUR + timedelta(seconds=1), resume).resumed == ["web01"]


def test_resume_failure_backs_off_then_alerts_once(store: WindowStore) -> None:
    open_window(store)
    resume = Recorder()
    resume.failing = True
    now = T0 + 2 * HOUR
    alerts = []
    for expected_delay in (30, 60, 120, 240):
        report = store.housekeeping(now, resume)
        (failure,) = report.failed
        assert failure.next_attempt_at == now + timedelta(seconds=expected_delay)
        assert failure.error == "Resume-VMReplication failed: host hv-a1 did not answer"
        alerts.append(failure.needs_alert)
        assert store.due_for_resume(now + timedelta(seconds=expected_delay - 1)) == []
        now = failure.next_attempt_at
    assert alerts == [False, False, True, False]  # alert_after_failures=3, exactly once
    window = store.get("web01")
    assert window is not None and window.failures == 4 and window.status is WindowStatus.OPEN
    resume.failing = False
    assert store.housekeeping(now, resume).resumed == ["web01"]


def test_backoff_is_capped(store: WindowStore) -> None:
    open_window(store)
    failures = [store.record_resume_failure("web01", "boom", T0 + 2 * HOUR) for _ in range(7)]
    assert failures[-1].next_attempt_at - (T0 + 2 * HOUR) == timedelta(seconds=600)
    with pytest.raises(WindowError, match="no backup window"):
        store.record_resume_failure("ghost", "boom", T0)


def test_close_ends_the_window_now(store: WindowStore) -> None:
    open_window(store)
    closed = store.close("web01", T0 + timedelta(minutes=10))
    assert closed is not None and closed.end == T0 + timedelta(minutes=10)
    assert [w.vm for w in store.due_for_resume(T0 + timedelta(minutes=10))] == ["web01"]
    store.mark_resumed("web01", T0 + timedelta(minutes=11))
    assert store.close("web01", T0 + timedelta(minutes=12)) is None
    assert store.close("ghost", T0) is None
    assert store.open_windows() == []


def test_expired_history_leaves_no_stale_due_entry(store: WindowStore) -> None:
    open_window(store)
    store.redis.delete("test:backup:window:web01")  # as if its record expired
    assert store.due_for_resume(T0 + 3 * HOUR) == []
    assert store.redis.zcard("test:backup:due") == 0


def test_end_early_resumes_that_window_only_once(store: WindowStore) -> None:
    open_window(store, "web01")
    open_window(store, "web02")
    resume = Recorder()
    now = T0 + timedelta(minutes=30)
    assert store.resume("web01", now, resume).skipped == ["web01"]  # not due yet: the window is still on
    store.close("web01", now)
    assert store.resume("web01", now, resume).resumed == ["web01"]
    assert store.resume("web01", now, resume).skipped == ["web01"]
    assert store.housekeeping(now, resume).resumed == []  # web02 is not due; web01 is done
    assert resume.calls == ["web01"]


def test_failure_without_message_still_names_the_error(store: WindowStore) -> None:
    open_window(store)

    def broken(window: Window) -> None:
        raise TimeoutError()

    (failure,) = store.housekeeping(T0 + 2 * HOUR, broken).failed
    assert failure.error == "TimeoutError"
