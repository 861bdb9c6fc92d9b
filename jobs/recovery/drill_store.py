"""Drill state in Redis: running drills and what each VM's cleanup must undo, last successful drills (bounded),
and schedules set from chat. Written before every mutating step, so a process that finds a drill whose worker is
gone knows which test VMs it may have left behind."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from jobs.keys import (
    DRILL_CLEANUP_LEASE_KEY,
    DRILL_DUE_KEY,
    DRILL_LAST_INDEX_KEY,
    DRILL_LAST_KEY,
    DRILL_NOTICE_KEY,
    DRILL_RUNS_KEY,
    DRILL_SCHEDULES_KEY,
    DRILL_VMS_KEY,
)
from jobs.recovery.model import DrillSchedule

MAX_LAST = 20_000  # last-success records kept (VMs and plans); the oldest go first
VM_STATE_TTL_S = 30 * 86400

# Per-VM states. From FAILING_OVER on, a test VM may exist: cleanup runs Stop-VMFailover if it does.
CHECKING, REFUSED, FAILING_OVER, STARTED, HEARTBEAT, CLEANED, CLEANUP_FAILED = (
    "checking", "refused", "failing_over", "started", "heartbeat", "cleaned", "cleanup_failed")
NEEDS_CLEANUP = frozenset({FAILING_OVER, STARTED, HEARTBEAT, CLEANUP_FAILED})


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class RunRecord:
    drill_id: str
    job_id: str
    target: str
    plan: str  # "" for a one-VM drill
    vms: list[dict[str, Any]]  # Member dicts: vm, primary_host, replica_host
    reply: dict[str, Any]
    trigger: str  # manual | scheduled
    started: float


@dataclass(frozen=True)
class StoredSchedule:
    plan: str
    schedule: DrillSchedule
    since: float  # when it was set (epoch)
    by: str  # who set it (a Slack user, or "plan file")
    reply: dict[str, Any]  # where its drills report
    last_started: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: Any) -> StoredSchedule:
        data = json.loads(raw)
        data["schedule"] = DrillSchedule(**data["schedule"])
        return cls(**data)


class DrillStore:
    def __init__(self, connection: redis.Redis) -> None:
        self.redis = connection

    # -- running drills ----------------------------------------------------------------------------------------
    def register(self, run: RunRecord) -> None:
        self.redis.hset(DRILL_RUNS_KEY, run.drill_id, json.dumps(asdict(run)))

    def runs(self) -> list[RunRecord]:
        return [RunRecord(**json.loads(raw)) for raw in self.redis.hvals(DRILL_RUNS_KEY)]

    def finish(self, drill_id: str) -> None:
        self.redis.hdel(DRILL_RUNS_KEY, drill_id)

    def set_vm(self, drill_id: str, vm: str, state: str, **detail: Any) -> None:
        key = DRILL_VMS_KEY.format(drill_id)
        self.redis.hset(key, vm, json.dumps({"state": state, "at": time.time(), **detail}))
        self.redis.expire(key, VM_STATE_TTL_S)

    def vm_states(self, drill_id: str) -> dict[str, dict[str, Any]]:
        return {_text(k): json.loads(v) for k, v in self.redis.hgetall(DRILL_VMS_KEY.format(drill_id)).items()}

    def take_cleanup(self, drill_id: str, ttl_s: int = 300) -> bool:
        """One process at a time cleans up a dead drill; the lease expires if that process dies too."""
        return bool(self.redis.set(DRILL_CLEANUP_LEASE_KEY.format(drill_id), "1", nx=True, ex=ttl_s))

    def drop_cleanup(self, drill_id: str) -> None:
        self.redis.delete(DRILL_CLEANUP_LEASE_KEY.format(drill_id))

    # -- last successful drill ---------------------------------------------------------------------------------
    def record_success(self, kind: str, name: str, at: float, detail: dict[str, Any]) -> None:
        field = f"{kind}:{name.lower()}"
        with self.redis.pipeline() as pipe:
            pipe.hset(DRILL_LAST_KEY, field, json.dumps({"name": name, "at": at, **detail}))
            pipe.zadd(DRILL_LAST_INDEX_KEY, {field: at})
            pipe.execute()
        excess = int(self.redis.zcard(DRILL_LAST_INDEX_KEY)) - MAX_LAST
        if excess > 0:
            oldest = [_text(f) for f in self.redis.zrange(DRILL_LAST_INDEX_KEY, 0, excess - 1)]
            self.redis.hdel(DRILL_LAST_KEY, *oldest)
            self.redis.zrem(DRILL_LAST_INDEX_KEY, *oldest)

    def last_success(self, kind: str, name: str) -> dict[str, Any] | None:
        raw = self.redis.hget(DRILL_LAST_KEY, f"{kind}:{name.lower()}")
        return json.loads(raw) if raw else None

    def last_successes(self, kind: str, names: list[str]) -> dict[str, dict[str, Any]]:
        """name -> its last successful drill, for the names that have one (one round trip)."""
        if not names:
            return {}
        raws = self.redis.hmget(DRILL_LAST_KEY, [f"{kind}:{n.lower()}" for n in names])
        return {n: json.loads(r) for n, r in zip(names, raws, strict=True) if r}

    # -- schedules set from chat -------------------------------------------------------------------------------
    def set_schedule(self, stored: StoredSchedule) -> None:
        self.redis.hset(DRILL_SCHEDULES_KEY, stored.plan.lower(), stored.to_json())

    def remove_schedule(self, plan: str) -> bool:
        return bool(self.redis.hdel(DRILL_SCHEDULES_KEY, plan.lower()))

    def schedules(self) -> list[StoredSchedule]:
        return [StoredSchedule.from_json(raw) for raw in self.redis.hvals(DRILL_SCHEDULES_KEY)]

    def mark_started(self, stored: StoredSchedule, at: float) -> None:
        current = self.redis.hget(DRILL_SCHEDULES_KEY, stored.plan.lower())
        base = StoredSchedule.from_json(current) if current else stored
        self.set_schedule(StoredSchedule(base.plan, base.schedule, base.since, base.by, base.reply, at))

    def claim_due(self, plan: str, due: datetime) -> bool:
        """True for exactly one caller per (plan, due time): two monitors, or a monitor and a worker's start-up
        housekeeping, never start the same scheduled drill twice."""
        key = DRILL_DUE_KEY.format(plan.lower(), int(due.timestamp()))
        return bool(self.redis.set(key, datetime.now(UTC).isoformat(), nx=True, ex=366 * 86400))

    def notice_once(self, notice_id: str, ttl_s: int) -> bool:
        return bool(self.redis.set(DRILL_NOTICE_KEY.format(notice_id), "1", nx=True, ex=max(ttl_s, 60)))
