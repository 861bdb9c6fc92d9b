"""Progress of one recovery run in Redis: every VM's state, times and error, and the run's own state.

One hash per run (``RECOVERY_RUN_KEY``): ``meta`` (JSON: the resolved plan, kind, card, reply, job, status,
summary), ``v`` (a version bumped on every change, so the card is redrawn only when something moved) and one
``vm:<replica>/<vm>`` field per VM. Any process can read it: the job's card refresher, the dead-run sweep of
another process, and the Resume button (which asks for the VMs not done).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any, cast

import redis

from jobs.keys import RECOVERY_RUN_KEY
from jobs.recovery.model import Member, ResolvedGroup, ResolvedPlan

RUN_TTL_S = 14 * 86400  # long enough to resume or audit a plan after a weekend


class VmState(StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    HEARTBEAT = "heartbeat"  # steps done, waiting for the guest's heartbeat
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # not started: the plan stopped before its group
    INTERRUPTED = "interrupted"  # running when the worker died: its state is whatever the hosts say now


FINISHED = (VmState.DONE, VmState.FAILED, VmState.SKIPPED)


@dataclass(frozen=True)
class VmProgress:
    vm: str
    replica: str
    group: str
    state: VmState = VmState.WAITING
    started: float | None = None  # epoch seconds (shared by every process reading the run)
    ended: float | None = None
    booted: float | None = None  # when its steps ended (the guest boots from then until its heartbeat)
    step: str = ""  # the step running or last done
    error: str = ""
    state_now: str = ""  # the hosts' view, read after a worker died

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return round(self.ended - self.started, 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VmProgress:
        fields = {k: v for k, v in data.items() if k != "seconds"}
        return cls(**{**fields, "state": VmState(fields["state"])})


def vm_field(member: Member) -> str:
    return f"vm:{member.replica_host}/{member.vm}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RunProgress:
    """The Redis record of one run (``run_id`` = the approval id that started it)."""

    def __init__(self, connection: redis.Redis, run_id: str) -> None:
        self.redis, self.run_id = connection, run_id
        self.key = RECOVERY_RUN_KEY.format(run_id)

    def create(self, plan: ResolvedPlan, meta: dict[str, Any]) -> None:
        fields: dict[str, str] = {"meta": json.dumps(meta | {"plan": plan.to_dict(), "status": "running"}), "v": "1"}
        for group in plan.groups:
            for m in group.vms:
                fields[vm_field(m)] = json.dumps(VmProgress(m.vm, m.replica_host, group.name).to_dict())
        with self.redis.pipeline() as pipe:
            pipe.delete(self.key)
            pipe.hset(self.key, mapping=cast(Any, fields))  # redis-py's Mapping key type is invariant
            pipe.expire(self.key, RUN_TTL_S)
            pipe.execute()

    def exists(self) -> bool:
        return bool(self.redis.exists(self.key))

    def vm(self, member: Member) -> VmProgress:
        raw = self.redis.hget(self.key, vm_field(member))
        if raw is None:
            raise KeyError(f"{member.vm} is not part of recovery run {self.run_id}")
        return VmProgress.from_dict(json.loads(raw))

    def update(self, member: Member, **changes: Any) -> VmProgress:
        """Change one VM's record (each VM is written by one thread at a time: no lost updates)."""
        now = replace(self.vm(member), **changes)
        with self.redis.pipeline() as pipe:
            pipe.hset(self.key, vm_field(member), json.dumps(now.to_dict()))
            pipe.hincrby(self.key, "v", 1)
            pipe.execute()
        return now

    def start(self, member: Member) -> VmProgress:
        return self.update(member, state=VmState.RUNNING, started=time.time(), ended=None, error="")

    def finish(self, member: Member, error: str = "") -> VmProgress:
        return self.update(member, state=VmState.FAILED if error else VmState.DONE, ended=time.time(), error=error)

    def meta(self) -> dict[str, Any]:
        raw = self.redis.hget(self.key, "meta")
        return json.loads(raw) if raw else {}

    def set_meta(self, **changes: Any) -> None:
        meta = self.meta() | changes
        with self.redis.pipeline() as pipe:
            pipe.hset(self.key, "meta", json.dumps(meta))
            pipe.hincrby(self.key, "v", 1)
            pipe.execute()

    def version(self) -> int:
        raw = self.redis.hget(self.key, "v")
        return int(raw) if raw else 0

    def plan(self) -> ResolvedPlan:
        return ResolvedPlan.from_dict(self.meta()["plan"])

    def snapshot(self) -> dict[str, Any]:
        """Everything a card shows: the run's meta (plan, kind, status, summary) and the VMs in plan order."""
        raw = {_text(k): _text(v) for k, v in self.redis.hgetall(self.key).items()}
        meta = json.loads(raw.get("meta", "{}"))
        if not meta:
            return {}
        plan = ResolvedPlan.from_dict(meta["plan"])
        vms = [json.loads(raw[vm_field(m)]) for m in plan.vms() if vm_field(m) in raw]
        return meta | {"run_id": self.run_id, "vms": vms, "version": int(raw.get("v", "0"))}

    def remaining(self) -> ResolvedPlan:
        """The plan with only the VMs not done (for Resume); empty groups are left out, order and settings kept."""
        plan = self.plan()
        groups = []
        for group in plan.groups:
            left = tuple(m for m in group.vms if self.vm(m).state is not VmState.DONE)
            if left:
                groups.append(ResolvedGroup(group.name, group.settings, left))
        return ResolvedPlan(plan.scope, plan.plan, tuple(groups))
