"""The bot's own verbs: `help`, `jobs` (running and recent), `cancel JOB`, `audit [N]`."""

from __future__ import annotations

import logging
from typing import Any

from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from slack_bolt import App

from bot.grammar import OPERATOR, Command, help_text
from bot.listeners.verbs import Verbs
from bot.middleware.authorization import Gate, Requester
from bot.runtime import Runtime
from bot.views import common as views
from jobs.job_listing import recent_jobs
from jobs.liveness import claim_final
from jobs.ports import ReplyTo

log = logging.getLogger("hvbot.jobs")

JOBS_LISTED = 20
INTAKE_WAIT_S = 1.0  # pending enqueues take milliseconds; the ack must still come well within Slack's 3 s


def show_help(runtime: Runtime, command: Command, who: Requester, body: dict[str, Any]) -> views.View:
    runtime.record(who.user, who.channel, command.canonical(), "done")
    return views.notice(help_text(command.args[0] if command.args else None))


def list_jobs(runtime: Runtime, command: Command, who: Requester, body: dict[str, Any]) -> views.View:
    _let_intake_land(runtime)
    runtime.record(who.user, who.channel, command.canonical(), "done")
    return views.jobs_list(recent_jobs(runtime.redis, runtime.settings.queue, JOBS_LISTED))


def show_audit(runtime: Runtime, command: Command, who: Requester, body: dict[str, Any]) -> views.View:
    count = int(command.args[0]) if command.args else 20
    runtime.record(who.user, who.channel, command.canonical(), "done")
    return views.audit_list(runtime.audit.recent(count))


def cancel(runtime: Runtime, command: Command, who: Requester, body: dict[str, Any]) -> views.View:
    job_id, user, channel = command.args[0], who.user, who.channel
    _let_intake_land(runtime)
    try:
        job = Job.fetch(job_id, connection=runtime.redis, serializer=JSONSerializer)
    except NoSuchJobError:
        return views.notice(f"There is no job `{job_id}` (finished jobs are kept for a while, then forgotten).")
    owner = str((job.meta or {}).get("user", ""))
    if owner != user and not runtime.authz.has_role(user, OPERATOR):  # the owner's own job needs no role more
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


def _let_intake_land(runtime: Runtime) -> None:
    """Lookups are queued just after their ack, off the request thread (bot/intake.py): a `cancel` or `jobs` sent
    right after must see them, not answer "there is no job"."""
    try:
        runtime.intake.drain(timeout=INTAKE_WAIT_S)
    except TimeoutError:
        log.warning("the intake is still queueing after %.1f s (Redis slow?): answering with what is queued",
                    INTAKE_WAIT_S)


def _report_cancelled(runtime: Runtime, job: Job, user: str) -> None:
    data = (job.kwargs or {}).get("reply")
    if isinstance(data, dict) and claim_final(runtime.redis, job.id):
        runtime.reporter.failed(job.id, ReplyTo.from_dict(data), f"Cancelled by {user} before it started.")


def register(app: App, runtime: Runtime, gate: Gate) -> Verbs:
    return {"help": show_help, "jobs": list_jobs, "cancel": cancel, "audit": show_audit}
