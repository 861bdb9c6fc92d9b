"""RQ entry points, thin: decode JSON arguments, call the module, report through jobs.ports.

Liveness: while a task runs it refreshes `hvbot:alive:<job id>` from the process that runs it, so a
detector (`sweep_abandoned`) notices a killed worker within a few heartbeats, not RQ's 60 s+ TTLs.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from jobs import ports as reporting
from jobs.ports import ReplyTo

log = logging.getLogger("hvbot.jobs")

ALIVE_KEY = "hvbot:alive:{}"
FINAL_KEY = "hvbot:final:{}"  # set once: the request's final message has been claimed
FINAL_TTL = 7 * 86400
ABANDONED_MESSAGE = (
    "The worker running this request stopped unexpectedly (killed or lost), so there is no result. "
    "Nothing was changed by hvbot; please run the command again."
)


def claim_final(connection: redis.Redis, job_id: str) -> bool:
    """True for exactly one caller per job: result, failure callback and abandoned-job detector race here."""
    return bool(connection.set(FINAL_KEY.format(job_id), b"1", nx=True, ex=FINAL_TTL))


@contextmanager
def heartbeat(connection: redis.Redis, job_id: str, interval: float) -> Iterator[None]:
    key = ALIVE_KEY.format(job_id)
    ttl_ms = max(int(interval * 3000), 1000)
    stop = threading.Event()
    connection.set(key, os.getpid(), px=ttl_ms)

    def beat() -> None:
        while not stop.wait(interval):
            try:
                connection.set(key, os.getpid(), px=ttl_ms)
            except redis.RedisError:
                log.warning("heartbeat write failed", extra={"job_id": job_id})

    thread = threading.Thread(target=beat, name=f"hvbot-heartbeat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval + 1)
        connection.delete(key)


def _lookups() -> dict[str, Callable[..., Any]]:
    from jobs.inventory import queries as inventory

    return {
        "ips": lambda fleet, args, host: inventory.find_ips(fleet, targets=tuple(args), host=host),
        "vms": lambda fleet, args, host: inventory.list_vms(fleet, name_filter=_one(args), host=host),
        "memory": lambda fleet, args, host: inventory.memory(fleet, vm=_one(args), host=host),
        "teaming": lambda fleet, args, host: inventory.teaming(fleet, vm=_one(args), host=host),
        "checkpoints": lambda fleet, args, host: inventory.checkpoints(fleet, args[0], host=host),
        "points": lambda fleet, args, host: _failover().points_report(fleet, args[0], host=host),
    }


def _failover() -> Any:
    from jobs.failover import run as failover

    return failover


def _one(args: list[str]) -> str | None:
    return args[0] if args else None


_fleet_cache: dict[int, Any] = {}
_fleet_lock = threading.Lock()


def fleet() -> Any:
    """One Fleet (host sessions) per process: a forked work horse must not reuse its parent's sockets."""
    from jobs.hyperv.fleet import Fleet
    from jobs.hyperv.hosts import load_inventory
    from jobs.hyperv.settings import JobSettings

    pid = os.getpid()
    with _fleet_lock:
        if pid not in _fleet_cache:
            settings = JobSettings()
            if settings.inventory is None:
                raise RuntimeError("No inventory configured: set HVBOT_INVENTORY to the inventory YAML file.")
            _fleet_cache.clear()
            _fleet_cache[pid] = Fleet(load_inventory(settings.inventory), settings)
        return _fleet_cache[pid]


def warm_fleet_in_background() -> threading.Thread | None:
    """Open this process's host sessions in a daemon thread (simple workers keep them between jobs).

    Why: RQ hands a host's next job to whichever worker is free, so without this each worker pays the
    pool-open exchanges once per host on its own first visit, sweeps after a restart included.
    Failures only cost the first call's speed: they are logged, the call opens the session itself.
    """
    from jobs.hyperv.settings import JobSettings

    if JobSettings().inventory is None:
        return None

    def warm() -> None:
        try:
            result = fleet().warm()
        except Exception:  # noqa: BLE001 - an optimisation: never take the worker down
            log.exception("opening host sessions ahead of jobs failed")
            return
        log.info("host sessions opened ahead of jobs: %d ok, %d failed (%s)", len(result.results),
                 len(result.errors), ", ".join(result.errors) or "none")

    thread = threading.Thread(target=warm, name="hvbot-warm-sessions", daemon=True)
    thread.start()
    return thread


def run_lookup(
    verb: str, args: list[str], host: str | None, reply: dict[str, Any], heartbeat_seconds: float = 10.0
) -> dict[str, Any]:
    """A read-only fleet lookup (ips, vms, memory, teaming, checkpoints); returns the Report as a dict."""
    from rq import get_current_job

    job = get_current_job()
    assert job is not None, "run_lookup runs inside an RQ job"
    target = ReplyTo.from_dict(reply)
    reporter = reporting.current()
    import structlog  # log lines of this job (including per-host ones) carry who asked for what

    structlog.contextvars.bind_contextvars(job_id=job.id, slack_user=target.user, command=target.command)
    with heartbeat(job.connection, job.id, heartbeat_seconds):
        job.meta["pid"] = os.getpid()
        job.save_meta()  # type: ignore[no-untyped-call]
        reporter.started(job.id, target)
        try:
            data: dict[str, Any] = _lookups()[verb](fleet(), list(args), host).to_dict()
        except Exception as exc:
            if claim_final(job.connection, job.id):
                reporter.failed(job.id, target, _clear_message(exc))
            raise
    if claim_final(job.connection, job.id):
        reporter.finished(job.id, target, data)
    return data


def _clear_message(exc: Exception) -> str:
    # jobs.hyperv errors and our RuntimeErrors are one clear, secret-free sentence; anything else is a bug.
    if type(exc).__module__.startswith("jobs.") or isinstance(exc, RuntimeError):
        return str(exc)
    return f"Internal error ({type(exc).__name__}); the details are in the worker log."


def reply_of(job: Job) -> ReplyTo | None:
    data = (job.kwargs or {}).get("reply")
    return ReplyTo.from_dict(data) if isinstance(data, dict) else None


def on_job_failed(job: Job, connection: redis.Redis, exc_type: Any, exc_value: Any, tb: Any) -> None:
    """RQ failure callback: timeouts, horse deaths, abandoned jobs. Re-reads status first (rq ≤ 2.12 bug, B7)."""
    if job.get_status(refresh=True) == JobStatus.FINISHED:
        return
    target = reply_of(job)
    if target is not None and claim_final(connection, job.id):
        reason = "took too long and was stopped" if "Timeout" in getattr(exc_type, "__name__", "") else "failed"
        reporting.current().failed(job.id, target, f"The request {reason}; please try again.")


def on_job_stopped(job: Job, connection: redis.Redis) -> None:
    target = reply_of(job)
    if target is not None and claim_final(connection, job.id):
        reporting.current().failed(job.id, target, "Cancelled while running.")


def abandoned_jobs(connection: redis.Redis, queue_name: str, grace_seconds: float) -> list[Job]:
    """Started jobs whose executing process stopped heart-beating (SIGKILL, OOM, host loss)."""
    registry = StartedJobRegistry(queue_name, connection=connection, serializer=JSONSerializer)
    found = []
    now = time.time()
    for job_id in registry.get_job_ids(cleanup=False):
        if connection.exists(ALIVE_KEY.format(job_id)) or connection.exists(FINAL_KEY.format(job_id)):
            continue
        job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer) if Job.exists(
            job_id, connection) else None
        if job is None or job.get_status(refresh=True) != JobStatus.STARTED or job.started_at is None:
            continue
        if now - job.started_at.timestamp() >= grace_seconds:
            found.append(job)
    return found


def sweep_abandoned(
    connection: redis.Redis, queue_name: str, grace_seconds: float, reporter: reporting.Reporter | None = None
) -> int:
    """Report each abandoned job once; returns how many were reported."""
    reporter = reporter or reporting.current()
    reported = 0
    for job in abandoned_jobs(connection, queue_name, grace_seconds):
        target = reply_of(job)
        if target is not None and claim_final(connection, job.id):
            reporter.failed(job.id, target, ABANDONED_MESSAGE)
            reported += 1
    return reported
