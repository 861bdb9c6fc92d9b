"""Backup windows: replication paused around a Replica-VM backup, with a guaranteed resume.

A window is recorded in Redis *before* replication is paused, so whatever happens to the worker or the chat server
afterwards, `housekeeping()` (run by `hvbot monitor` every sweep and at each worker start) finds every window
past its end that was not resumed and resumes it. Several processes may run housekeeping at once: a lease per
window (redis-py's `Lock`, token-checked release) plus a re-read of the window under the lease make each
overdue window resume exactly once. A failed resume is retried with backoff, and after `alert_after_failures`
failures `needs_alert` is raised exactly once so on-call can retry or resynchronize.

Which side to pause (`WindowConfig.pause_side`, default the primary): hyperv.md §1.8 says the right side for a
clean Replica-VM backup is UNCONFIRMED. What is documented (WS2012, [BLOG-H1]): pausing on the *replica* makes
replica health Critical, and "replica health is Critical" is itself backup-failure condition #4 (§4), so a
replica-side pause can make the very backup it protects fail; pausing on the *primary* only gives health
Warning, which blocks nothing. Hence the primary by default, configurable to the replica for hosts where that
is verified to behave differently. Keep windows short: if the primary's change log grows past 50% of the VHD
size the VM needs a full resynchronization [BLOG-RESYNC]; `max_duration_s` bounds a window.

Error texts stored here come from the Hyper-V access layer, whose messages never carry secrets; they are cut
to one line of at most 300 characters. All times are aware datetimes passed in by the caller.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import redis
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import LockError

from jobs.keys import BACKUP_PREFIX


class PauseSide(StrEnum):
    PRIMARY = "primary"
    REPLICA = "replica"


class WindowStatus(StrEnum):
    OPEN = "open"  # recorded; replication is paused (or about to be) until resumed
    RESUMED = "resumed"


class WindowConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    pause_side: PauseSide = PauseSide.PRIMARY
    lease_s: float = Field(default=120.0, gt=0)  # longer than one resume (with its verification) may take
    resume_first_delay_s: float = Field(default=30.0, gt=0)
    resume_max_delay_s: float = Field(default=600.0, gt=0)
    alert_after_failures: int = Field(default=3, ge=1)
    max_duration_s: float = Field(default=12 * 3600.0, gt=0)
    history_ttl_s: int = Field(default=7 * 86400, gt=0)  # resumed windows are kept this long, then expire


class WindowError(ValueError):
    """A window request that cannot be recorded; the message says why."""


@dataclass(frozen=True)
class Window:
    vm: str
    host: str
    side: PauseSide
    start: datetime
    end: datetime
    requested_by: str
    status: WindowStatus = WindowStatus.OPEN
    failures: int = 0
    next_attempt_at: datetime | None = None
    last_error: str = ""
    resumed_at: datetime | None = None

    @property
    def due_at(self) -> datetime:
        """When housekeeping should next try to resume it."""
        return max(self.end, self.next_attempt_at) if self.next_attempt_at else self.end

    def to_dict(self) -> dict[str, Any]:
        return {
            "vm": self.vm, "host": self.host, "side": self.side.value, "start": self.start.isoformat(),
            "end": self.end.isoformat(), "requested_by": self.requested_by, "status": self.status.value,
            "failures": self.failures, "last_error": self.last_error,
            "next_attempt_at": self.next_attempt_at.isoformat() if self.next_attempt_at else None,
            "resumed_at": self.resumed_at.isoformat() if self.resumed_at else None,
        }


@dataclass(frozen=True)
class ResumeFailure:
    vm: str
    failures: int
    next_attempt_at: datetime
    error: str
    needs_alert: bool  # true exactly once: on the failure that reaches `alert_after_failures`


@dataclass
class HousekeepingReport:
    resumed: list[str] = field(default_factory=list)
    failed: list[ResumeFailure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # another process held the lease, or already resumed


ResumeFn = Callable[[Window], object]  # resumes replication and verifies it; raises on failure


class WindowStore:
    def __init__(self, redis_client: redis.Redis, prefix: str = BACKUP_PREFIX,
                 config: WindowConfig | None = None) -> None:
        self.redis = redis_client
        self.prefix = prefix
        self.config = config or WindowConfig()

    # -- keys -------------------------------------------------------------------------------------------
    def _key(self, vm: str) -> str:
        return f"{self.prefix}:window:{vm}"

    @property
    def _due_key(self) -> str:
        return f"{self.prefix}:due"

    # -- recording --------------------------------------------------------------------------------------
    def open(self, vm: str, host: str, side: PauseSide | str | None, start: datetime, end: datetime,
             requested_by: str) -> Window:
        """Record a window before pausing; refuses a second open window for the same VM."""
        _require_aware(start, end)
        if end <= start:
            raise WindowError("a backup window must end after it starts")
        if (end - start).total_seconds() > self.config.max_duration_s:
            hours = self.config.max_duration_s / 3600
            raise WindowError(f"a backup window may last at most {hours:g} h (long pauses force a resync)")
        window = Window(vm, host, PauseSide(side or self.config.pause_side), start, end, requested_by)

        def write(pipe: redis.client.Pipeline) -> None:
            if _text(pipe.hget(self._key(vm), "status")) == WindowStatus.OPEN:
                raise WindowError(f"{vm} already has an open backup window")
            pipe.multi()
            pipe.delete(self._key(vm))
            pipe.hset(self._key(vm), mapping=_encode(window))
            pipe.zadd(self._due_key, {vm: end.timestamp()})

        self.redis.transaction(write, self._key(vm))
        return window

    def get(self, vm: str) -> Window | None:
        return _decode(self.redis.hgetall(self._key(vm)))

    def open_windows(self) -> list[Window]:
        windows = (self.get(_text(vm)) for vm in self.redis.zrange(self._due_key, 0, -1))
        return [w for w in windows if w and w.status is WindowStatus.OPEN]

    def close(self, vm: str, now: datetime) -> Window | None:
        """End a window early: it becomes due for resume at `now`. None when no window is open."""
        _require_aware(now)

        closed = False

        def shorten(pipe: redis.client.Pipeline) -> None:
            nonlocal closed
            window = _decode(pipe.hgetall(self._key(vm)))
            closed = window is not None and window.status is WindowStatus.OPEN
            if window is None or not closed:
                return
            end = min(window.end, now)
            pipe.multi()
            pipe.hset(self._key(vm), "end", end.timestamp())
            pipe.zadd(self._due_key, {vm: max(end.timestamp(), _ts(window.next_attempt_at))})

        # WATCH makes this atomic with a concurrent mark_resumed (no stale re-add to the due set).
        self.redis.transaction(shorten, self._key(vm))
        return self.get(vm) if closed else None

    def is_in_window(self, vm: str, now: datetime) -> bool:
        """For alert suppression: the window has started and replication was not resumed yet."""
        window = self.get(vm)
        return bool(window and window.status is WindowStatus.OPEN and window.start <= now)

    # -- resuming ---------------------------------------------------------------------------------------
    def due_for_resume(self, now: datetime) -> list[Window]:
        """Open windows past their end whose next resume attempt is due."""
        due = []
        for member in self.redis.zrangebyscore(self._due_key, "-inf", now.timestamp()):
            window = self.get(_text(member))
            if window is None or window.status is not WindowStatus.OPEN:
                self._drop_if_stale(_text(member))
            elif window.due_at <= now:
                due.append(window)
        return due

    def _drop_if_stale(self, vm: str) -> None:
        """Forget a due entry whose window expired or was resumed, unless a new window was opened since."""

        def drop(pipe: redis.client.Pipeline) -> None:
            window = _decode(pipe.hgetall(self._key(vm)))
            pipe.multi()
            if window is None or window.status is not WindowStatus.OPEN:
                pipe.zrem(self._due_key, vm)

        self.redis.transaction(drop, self._key(vm))

    def mark_resumed(self, vm: str, now: datetime) -> None:
        pipe = self.redis.pipeline()
        pipe.hset(self._key(vm), mapping={"status": WindowStatus.RESUMED.value, "resumed_at": now.timestamp()})
        pipe.expire(self._key(vm), self.config.history_ttl_s)
        pipe.zrem(self._due_key, vm)
        pipe.execute()

    def record_resume_failure(self, vm: str, error: str, now: datetime) -> ResumeFailure:
        """Count a failed resume and push the next attempt out with exponential backoff."""
        if not self.redis.exists(self._key(vm)):
            raise WindowError(f"{vm} has no backup window")
        failures = int(self.redis.hincrby(self._key(vm), "failures", 1))  # atomic: one count per failure
        delay = min(self.config.resume_first_delay_s * 2 ** (failures - 1), self.config.resume_max_delay_s)
        next_at = now + timedelta(seconds=delay)
        message = " ".join(str(error).split())[:300]
        pipe = self.redis.pipeline()
        pipe.hset(self._key(vm), mapping={"next_attempt_at": next_at.timestamp(), "last_error": message})
        pipe.zadd(self._due_key, {vm: next_at.timestamp()}, gt=True)
        pipe.execute()
        needs_alert = failures == self.config.alert_after_failures
        return ResumeFailure(vm, failures, next_at, message, needs_alert)

    def housekeeping(self, now: datetime, resume_fn: ResumeFn) -> HousekeepingReport:
        """Resume every overdue window once; safe to run from several processes at the same time."""
        report = HousekeepingReport()
        for candidate in self.due_for_resume(now):
            self._resume_one(candidate.vm, now, resume_fn, report)
        return report

    def resume(self, vm: str, now: datetime, resume_fn: ResumeFn) -> HousekeepingReport:
        """Resume one window now if it is due (e.g. right after `close`), under the same lease."""
        report = HousekeepingReport()
        self._resume_one(vm, now, resume_fn, report)
        return report

    def _resume_one(self, vm: str, now: datetime, resume_fn: ResumeFn, report: HousekeepingReport) -> None:
        with self._leased(vm) as held:
            # Re-read under the lease: another process may have resumed it since the due list was read.
            window = self.get(vm) if held else None
            if window is None or window.status is not WindowStatus.OPEN or window.due_at > now:
                report.skipped.append(vm)
                return
            try:
                resume_fn(window)
            except Exception as exc:  # noqa: BLE001 - any failure is recorded, retried and alerted
                error = str(exc) or type(exc).__name__
                report.failed.append(self.record_resume_failure(vm, error, now))
                return
            self.mark_resumed(vm, now)
            report.resumed.append(vm)

    @contextmanager
    def lease(self, vm: str) -> Iterator[bool]:
        """Hold the per-window lease (e.g. while pausing), so pause and resume never interleave."""
        with self._leased(vm) as held:
            yield held

    @contextmanager
    def _leased(self, vm: str) -> Iterator[bool]:
        lock = self.redis.lock(f"{self.prefix}:lease:{vm}", timeout=self.config.lease_s, blocking=False)
        held = bool(lock.acquire(token=uuid.uuid4().hex))
        try:
            yield held
        finally:
            if held:
                try:
                    lock.release()
                except LockError:
                    pass  # the lease expired meanwhile; nothing of ours left to release


def _require_aware(*times: datetime) -> None:
    if any(t.tzinfo is None for t in times):
        raise WindowError("times must be timezone-aware (naive times are ambiguous)")


def _ts(value: datetime | None) -> float:
    return value.timestamp() if value else 0.0


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def _encode(w: Window) -> Mapping[Any, str | float | int]:
    return {
        "vm": w.vm, "host": w.host, "side": w.side.value, "start": w.start.timestamp(),
        "end": w.end.timestamp(), "requested_by": w.requested_by, "status": w.status.value,
        "failures": w.failures, "last_error": w.last_error,
    }


def _decode(raw: Mapping[Any, Any]) -> Window | None:
    data = {_text(k): _text(v) for k, v in raw.items()}
    if "vm" not in data:
        return None

    def when(name: str) -> datetime | None:
        return datetime.fromtimestamp(float(data[name]), UTC) if data.get(name) else None

    return Window(
        vm=data["vm"], host=data["host"], side=PauseSide(data["side"]), start=when("start") or _never(),
        end=when("end") or _never(), requested_by=data["requested_by"], status=WindowStatus(data["status"]),
        failures=int(data.get("failures") or 0), next_attempt_at=when("next_attempt_at"),
        last_error=data.get("last_error", ""), resumed_at=when("resumed_at"),
    )


def _never() -> datetime:
    raise WindowError("stored backup window is missing its start or end")
