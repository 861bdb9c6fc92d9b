"""The shared parts one hvbot process wires together: Redis, the RQ queue, audit, authz, reporter."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer
from slack_sdk import WebClient

from bot.delivery.cards import CardReporter
from bot.delivery.drills import SlackDrillReporter
from bot.delivery.recovery_run import RecoveryRunReporter
from bot.delivery.slack import SlackReporter, web_client
from bot.grammar import Command
from bot.intake import Intake
from bot.redis_client import CHAT, connect
from bot.roles import Authorizer, GroupCache, slack_group_fetcher
from bot.settings import Settings
from jobs import liveness as tasks
from jobs.backoff import backoff_s
from jobs.audit import AuditEntry, AuditLog
from jobs.failover.tasks import sweep_dead_failovers
from jobs.inventory.tasks import run_lookup
from jobs.keys import DRILL_RUNS_KEY, FAILOVER_RUNS_KEY, RECOVERY_RUNS_KEY
from jobs.periodic import Periodic
from jobs.ports import ReplyTo
from jobs.queue import enqueue, new_job_id
from jobs.recovery.drill_tasks import sweep_dead_drills
from jobs.recovery.tasks import sweep_dead_recoveries

log = logging.getLogger("hvbot.runtime")
MAX_BACKOFF_S = 60.0  # the slowest the watcher tries while Redis is down


def redis_connection(settings: Settings) -> redis.Redis:
    """Short timeouts and one quick retry: a handler must answer Slack within 3 s even when Redis is down."""
    return connect(settings, CHAT)


def _logged(work: Callable[[], None], what: str) -> None:
    try:
        work()
    except Exception:  # noqa: BLE001 - an executor would swallow it: the log is the last place it can show
        log.exception("%s failed after the ack", what)


@dataclass
class Runtime:
    settings: Settings
    redis: redis.Redis
    client: WebClient
    reporter: SlackReporter
    authz: Authorizer
    audit: AuditLog

    def __post_init__(self) -> None:
        self.queue = Queue(self.settings.queue, connection=self.redis, serializer=JSONSerializer)
        self.intake = Intake(self.redis)
        self.follow_ups: Executor | None = None  # build_app's lazy-listener pool: work that runs after an ack

    def after_ack(self, work: Callable[[], None], what: str) -> None:
        """Run ``work`` once the ack has gone: Slack wants the ack within 3 s, and a Web API call can wait out a
        429 for longer. Without a pool (no Bolt app built) it runs at once. ``work`` reports its own failures."""
        if self.follow_ups is None:
            _logged(work, what)
        else:
            self.follow_ups.submit(_logged, work, what)

    def enqueue_lookup(self, command: Command, reply: ReplyTo, job_id: str | None = None) -> Job:
        """Enqueue and audit in one Redis round trip (run by the intake, after the ack)."""
        meta = {"user": reply.user, "channel": reply.channel, "command": command.canonical()}
        job_id = job_id or new_job_id()
        with self.redis.pipeline() as pipe:
            job = self._enqueue(command, reply, job_id, meta, pipe)
            self.audit.record(AuditEntry(reply.user, reply.channel, meta["command"], "accepted", job_id=job_id),
                              pipeline=pipe)
            pipe.execute()
        return job

    def _enqueue(self, command: Command, reply: ReplyTo, job_id: str, meta: dict[str, str], pipe: Any) -> Job:
        return enqueue(
            self.queue,
            run_lookup,
            {
                "verb": command.verb,
                "args": list(command.args),
                "host": command.host,
                "reply": reply.to_dict(),
                "heartbeat_seconds": self.settings.abandoned_check_seconds,
                **({"options": dict(command.extra)} if command.extra else {}),
            },
            job_id=job_id,
            description=f"/hyperv {command.canonical()} by {reply.user}",
            timeout=self.settings.job_timeout_seconds,
            result_ttl=self.settings.result_ttl_seconds,
            failure_ttl=self.settings.result_ttl_seconds,
            report_failure=True,
            report_stopped=True,
            meta=meta,
            pipeline=pipe,
        )

    def record(self, user: str, channel: str, command: str, outcome: str, detail: str = "", job_id: str = "") -> None:
        try:
            self.audit.record(AuditEntry(user, channel, command, outcome, detail, job_id))
        except redis.RedisError:
            log.warning("audit write failed (Redis unreachable): %s %s by %s", outcome, command[:80], user)

    def card_reporter(self) -> CardReporter:
        """Failover cards (the worker side of jobs.ports.StepReporter) through this process's Slack client."""
        return CardReporter(self.settings, self.redis, self.client, self.audit)

    def recovery_reporter(self) -> RecoveryRunReporter:
        """The live card of site/host/plan failovers (the worker side of jobs.ports.RecoveryReporter)."""
        return RecoveryRunReporter(self.settings, self.redis, self.client, self.audit)

    def sweep_abandoned(self) -> int:
        found = tasks.sweep_abandoned(
            self.redis, self.settings.queue, grace_seconds=2 * self.settings.abandoned_check_seconds,
            reporter=self.reporter,
        )
        return found + self.sweep_dead_failovers() + self.sweep_dead_drills() + self.sweep_dead_recoveries()

    def sweep_dead_recoveries(self) -> int:
        """Recovery plans of dead workers: the card shows every VM's state and Resume; their VM locks are freed."""
        if not self.redis.exists(RECOVERY_RUNS_KEY):
            return 0
        return sweep_dead_recoveries(self.redis, datetime.now(UTC), 2 * self.settings.abandoned_check_seconds,
                                     reporter=self.recovery_reporter())

    def sweep_dead_failovers(self) -> int:
        """Failovers of dead workers: card shows the failure and the VM's state; the VM lock is freed."""
        if not self.redis.exists(FAILOVER_RUNS_KEY):  # the usual case: one EXISTS per period
            return 0
        return sweep_dead_failovers(self.redis, datetime.now(UTC), 2 * self.settings.abandoned_check_seconds,
                                    steps=self.card_reporter())

    def sweep_dead_drills(self) -> int:
        """Drills of dead workers: their test VMs are removed (or on-call alerted) and the drill reported."""
        if not self.redis.exists(DRILL_RUNS_KEY):
            return 0
        return sweep_dead_drills(self.redis, datetime.now(UTC), 2 * self.settings.abandoned_check_seconds,
                                 reporter=SlackDrillReporter(self.settings, self.redis, self.client))


def build_runtime(settings: Settings, connection: redis.Redis | None = None,
                  client: WebClient | None = None) -> Runtime:
    connection = connection if connection is not None else redis_connection(settings)
    client = client or web_client(settings)
    groups = GroupCache(slack_group_fetcher(client), settings.usergroup_cache_seconds)
    authz = Authorizer(settings.viewers, settings.operators, settings.approvers, settings.allowed_channels, groups)
    reporter = SlackReporter(settings, connection, client)
    return Runtime(settings, connection, client, reporter, authz, AuditLog(connection))


class AbandonedJobWatcher(Periodic):
    """Every `abandoned_check_seconds`, reports started jobs whose worker died (a daemon thread)."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime, self._period_s = runtime, runtime.settings.abandoned_check_seconds
        self._failures = 0
        super().__init__("hvbot-abandoned-watcher", self._period_s)

    def round(self) -> float:
        try:
            found = self._runtime.sweep_abandoned()
        except Exception as exc:
            self._failures += 1
            if isinstance(exc, redis.RedisError):  # one line, no traceback: an outage is not a bug
                log.warning("abandoned-job sweep: Redis unreachable (%s), %d failed tries in a row",
                            type(exc).__name__, self._failures)
            else:
                log.exception("abandoned-job sweep failed")
            return backoff_s(self._failures, self._period_s, max(self._period_s, MAX_BACKOFF_S))
        if self._failures:
            log.warning("abandoned-job sweep: Redis answers again after %d failed tries", self._failures)
        self._failures = 0
        if found:
            log.warning("reported %d abandoned job(s)", found)
        return self._period_s
