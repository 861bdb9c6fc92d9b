"""What `/hyperv` does with one request: parse, authorize, enqueue or answer. Fast: it runs before ack()."""

from __future__ import annotations

import logging
from typing import Any

import redis
import structlog
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import FinishedJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer

from bot.views import common as views
from bot.grammar import OPERATOR, Command, CommandError, help_text, parse
from jobs.queue import new_job_id
from bot.runtime import Runtime, job_summary
from jobs.ports import ReplyTo
from jobs.liveness import claim_final

log = logging.getLogger("hvbot.handlers")

REDIS_DOWN = (
    "hvbot cannot reach its job queue (Redis) right now, so nothing was started. "
    "Please try again in a minute; if this persists, tell the hvbot admins."
)


def handle_command(runtime: Runtime, body: dict[str, Any]) -> views.View:
    """The immediate answer (the ack) to one /hyperv request."""
    user, channel = str(body.get("user_id", "")), str(body.get("channel_id", ""))
    text = str(body.get("text", ""))
    try:
        command = parse(text)
    except CommandError as exc:
        runtime.record(user, channel, text, "invalid", exc.message)
        return views.notice(exc.text())
    try:
        with structlog.contextvars.bound_contextvars(slack_user=user, command=command.verb):
            return _authorized(runtime, command, body, user, channel)
    except redis.RedisError:
        log.warning("Redis unreachable while handling %s", command.verb)
        return views.notice(REDIS_DOWN)


def _authorized(runtime: Runtime, command: Command, body: dict[str, Any], user: str, channel: str) -> views.View:
    if command.verb == "help":
        runtime.record(user, channel, command.canonical(), "done")
        return views.notice(help_text(command.args[0] if command.args else None))
    decision = runtime.authz.check(user, channel, command.spec.role, command.verb)
    if not decision.allowed:
        runtime.record(user, channel, command.canonical(), "refused", decision.reason)
        return views.notice(decision.reason)
    if command.verb == "teaming" and len(command.args) == 2:
        from bot.listeners import teaming as teaming_flow

        return teaming_flow.handle(runtime, command, user, channel)
    if command.spec.lookup:
        return _enqueue(runtime, command, body, user, channel)
    if command.verb == "jobs":
        runtime.record(user, channel, command.canonical(), "done")
        return views.jobs_list(recent_jobs(runtime))
    if command.verb == "cancel":
        return _cancel(runtime, command.args[0], user, channel)
    if command.verb in ("replication", "silence"):
        from bot.listeners import monitor as monitor_commands

        return monitor_commands.handle(runtime, command, user, channel)
    if command.verb in ("failover", "reverse"):
        from bot.listeners import failover as failover_flow

        return failover_flow.handle(runtime, command, user, channel)
    if command.verb in ("backup-check", "backup-window", "checkpoint", "export"):
        from bot.listeners import backup as backup_flow

        return backup_flow.handle(runtime, command, user, channel)
    if command.verb == "audit":
        count = int(command.args[0]) if command.args else 20
        runtime.record(user, channel, command.canonical(), "done")
        return views.audit_list(runtime.audit.recent(count))
    raise AssertionError(f"verb {command.verb} has no handler")  # GRAMMAR and this function disagree


def _enqueue(runtime: Runtime, command: Command, body: dict[str, Any], user: str, channel: str) -> views.View:
    reply = ReplyTo(
        channel=channel,
        user=user,
        command=command.canonical(),
        response_url=str(body.get("response_url", "")),
        here=command.here,
    )
    if not runtime.intake.redis_up():
        return views.notice(REDIS_DOWN)
    job_id = new_job_id()
    # queued (and audited) right after the ack, off the request thread: see bot/intake.py
    runtime.intake.submit(lambda: runtime.enqueue_lookup(command, reply, job_id), reply.response_url,
                          command.canonical())
    if command.here:
        return views.notice(f"Queued `{command.canonical()}` as job {job_id}; the answer will be posted here.")
    return views.working(command.canonical(), job_id)


def recent_jobs(runtime: Runtime, limit: int = 20) -> list[dict[str, str]]:
    name, conn = runtime.settings.queue, runtime.redis
    ids = list(StartedJobRegistry(name, connection=conn).get_job_ids(cleanup=False))
    ids += runtime.queue.get_job_ids(0, limit)
    ids += FinishedJobRegistry(name, connection=conn).get_job_ids(0, limit, desc=True, cleanup=False)
    jobs = Job.fetch_many(list(dict.fromkeys(ids))[:limit], connection=conn, serializer=JSONSerializer)
    return [job_summary(j) for j in jobs if j is not None]


def _cancel(runtime: Runtime, job_id: str, user: str, channel: str) -> views.View:
    try:
        job = Job.fetch(job_id, connection=runtime.redis, serializer=JSONSerializer)
    except NoSuchJobError:
        return views.notice(f"There is no job `{job_id}` (finished jobs are kept for a while, then forgotten).")
    owner = str((job.meta or {}).get("user", ""))
    if owner != user and not runtime.authz.has_role(user, OPERATOR):
        runtime.record(user, channel, f"cancel {job_id}", "refused", "not owner")
        return views.notice(f"Cancelling someone else's job needs the *{OPERATOR}* role.")
    status = job.get_status(refresh=True)
    if status in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
        job.cancel()
        _report_cancelled(runtime, job, user)
        outcome = "cancelled before it started"
    elif status == JobStatus.STARTED:
        try:
            send_stop_job_command(runtime.redis, job_id, serializer=JSONSerializer)
            outcome = "asked the worker to stop it (a host call already under way finishes first)"
        except InvalidJobOperation:
            outcome = "it finished just now"
    else:
        outcome = f"nothing to do: it is already {getattr(status, 'value', status)}"
    runtime.record(user, channel, f"cancel {job_id}", "cancelled", outcome, job_id)
    return views.notice(f"Job `{job_id}`: {outcome}.")


def _report_cancelled(runtime: Runtime, job: Job, user: str) -> None:
    data = (job.kwargs or {}).get("reply")
    if isinstance(data, dict) and claim_final(runtime.redis, job.id):
        runtime.reporter.failed(job.id, ReplyTo.from_dict(data), f"Cancelled by {user} before it started.")
