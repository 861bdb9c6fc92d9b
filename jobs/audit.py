"""Append-only audit trail in a Redis stream: who, where, what, outcome. Never a secret."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import redis

from jobs.keys import AUDIT_STREAM

MAX_ENTRIES = 100_000  # approximate trim keeps the stream bounded


@dataclass(frozen=True)
class AuditEntry:
    user: str
    channel: str
    command: str
    outcome: str  # accepted | refused | invalid | done | failed | abandoned | cancelled | unavailable
    detail: str = ""
    job_id: str = ""
    at: float = 0.0


class AuditLog:
    def __init__(self, connection: redis.Redis) -> None:
        self._redis = connection

    def record(self, entry: AuditEntry, pipeline: redis.client.Pipeline | None = None) -> None:
        fields = asdict(entry)
        fields["at"] = entry.at or time.time()
        fields["command"] = entry.command[:300]
        fields["detail"] = entry.detail[:300]
        (pipeline if pipeline is not None else self._redis).xadd(
            AUDIT_STREAM, {k: str(v) for k, v in fields.items()}, maxlen=MAX_ENTRIES, approximate=True)

    def recent(self, count: int) -> list[AuditEntry]:
        rows: Any = self._redis.xrevrange(AUDIT_STREAM, count=count)
        return [_entry(fields) for _id, fields in rows or []]


def _entry(fields: dict[bytes, bytes]) -> AuditEntry:
    data = {k.decode(): v.decode() for k, v in fields.items()}
    return AuditEntry(
        user=data.get("user", ""),
        channel=data.get("channel", ""),
        command=data.get("command", ""),
        outcome=data.get("outcome", ""),
        detail=data.get("detail", ""),
        job_id=data.get("job_id", ""),
        at=float(data.get("at", "0") or 0),
    )
