"""The queue's running, queued and recent jobs as rows people can read, for `/hyperv jobs` and the Home tab.

A row names what the job does: the `/hyperv` command it answers (job meta), else the description every hvbot
enqueue sets (a monitor sweep, a preview, a scheduled drill), so no row reads as an empty "— by <@>".
"""

from __future__ import annotations

from datetime import datetime

import redis
from rq import Queue
from rq.job import Job
from rq.registry import FinishedJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer

from jobs import units


def recent_jobs(connection: redis.Redis, queue_name: str, limit: int,
                now: datetime | None = None) -> list[dict[str, str]]:
    """Running first, then queued, then the most recently finished: at most ``limit`` rows."""
    queue = Queue(queue_name, connection=connection, serializer=JSONSerializer)
    ids = list(StartedJobRegistry(queue_name, connection=connection).get_job_ids(cleanup=False))
    ids += queue.get_job_ids(0, limit)
    ids += FinishedJobRegistry(queue_name, connection=connection).get_job_ids(0, limit, desc=True, cleanup=False)
    jobs = Job.fetch_many(list(dict.fromkeys(ids))[:limit], connection=connection, serializer=JSONSerializer)
    return [job_summary(j, now) for j in jobs if j is not None]


def job_summary(job: Job, now: datetime | None = None) -> dict[str, str]:
    meta = job.meta or {}
    when = job.ended_at or job.started_at or job.enqueued_at
    return {
        "id": job.id,
        "status": str(getattr(job.get_status(refresh=False), "value", None) or "unknown"),
        "command": f"/hyperv {meta['command']}" if meta.get("command") else str(job.description or ""),
        "user": str(meta.get("user", "")),
        "age": units.age(when, now) if when else "",
    }


def job_line(row: dict[str, str]) -> str:
    """``status 2 min ago — what``: plain text, the caller escapes and adds the id."""
    status = f"{row['status']} {row.get('age', '')}".strip()
    return f"{status} — {row['command']}" if row.get("command") else status
