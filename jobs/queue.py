"""Putting work on the RQ queue: one `enqueue()` for every job hvbot starts, and one way to mint job ids.

Jobs are passed as functions, so RQ stores the dotted path of where they are defined; a renamed or moved
function is then a failing import here, not a job that fails in a worker later.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from redis.client import Pipeline
from rq import Queue
from rq.job import Callback, Job

from jobs.liveness import on_job_failed, on_job_stopped


EnqueueObserver = Callable[[Job], None]
_observers: list[EnqueueObserver] = []


def observe_enqueues(observer: EnqueueObserver) -> Callable[[], None]:
    """Call `observer(job)` for every job this process enqueues from now on; returns the function that stops it.

    Why: a process that runs its own worker (the demo's console) waits for every answer a request started,
    follow-up jobs included, and only the enqueuing side sees a job before a worker can take it.
    """
    _observers.append(observer)

    def stop() -> None:
        if observer in _observers:
            _observers.remove(observer)

    return stop


def new_job_id(kind: str = "hv") -> str:
    """A short unguessable id; `kind` is its prefix (hv lookups, tm teaming, fp failover previews, ...)."""
    return f"{kind}{secrets.token_hex(5)}"


def enqueue(
    queue: Queue,
    func: Callable[..., Any],
    kwargs: Mapping[str, Any],
    *,
    description: str,
    job_id: str | None = None,
    timeout: int | None = None,
    result_ttl: int | None = None,
    failure_ttl: int | None = None,
    report_failure: bool = False,
    report_stopped: bool = False,
    meta: dict[str, Any] | None = None,
    pipeline: Pipeline | None = None,
    at: datetime | None = None,
) -> Job:
    """Enqueue `func(**kwargs)` now, or schedule it `at` a time (the worker's scheduler starts it then).

    `description` is what job listings show (RQ's default would print the kwargs, response URLs included).
    `job_id` None lets RQ pick one; None timeouts and TTLs are RQ's defaults. `report_failure` /
    `report_stopped` tell the requester when the job fails or is stopped (jobs.liveness callbacks).
    """
    options: dict[str, Any] = {
        "job_id": job_id, "job_timeout": timeout, "result_ttl": result_ttl, "failure_ttl": failure_ttl,
        "description": description, "meta": meta, "pipeline": pipeline,
        "on_failure": Callback(on_job_failed) if report_failure else None,
        "on_stopped": Callback(on_job_stopped) if report_stopped else None,
    }
    if at is not None:
        job = queue.enqueue_at(at, func, kwargs=dict(kwargs), **options)
    else:
        job = queue.enqueue(func, kwargs=dict(kwargs), **options)
    for observer in list(_observers):
        observer(job)
    return job
