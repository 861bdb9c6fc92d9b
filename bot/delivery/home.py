"""App Home: gather one user's view from Redis and publish it (views.publish), paced; refresh after sweeps.

`HomePublisher.opened(user)` publishes at once and remembers the user in a capped sorted set
(`jobs.keys.HOME_RECENT_KEY`: at most MAX_RECENT users, each for RECENT_S after their last open).
`refresh_after_sweep()` republishes the views of the RECENT_PER_PASS users who opened Home most recently, once
per new sweep result (`SWEEP_STORED_KEY` moved) or change of the pending approvals, at most every MIN_PASS_S.
Every publish takes a slot of one shared Redis pacer: Slack lists `views.publish` as Tier 4 (100+ per minute per
workspace; not in the project's reference, from Slack's method page), so hvbot stays PUBLISH_INTERVAL_S apart
across all its processes. `HomeRefresher` runs the refresh in the monitor
process on its own thread, so a long pass never delays a monitor round.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import redis
from slack_sdk import WebClient

from bot.delivery.pacing import Pacer
from bot.roles import Authorizer
from bot.views.home import HomeData, PendingApproval, home_view
from jobs import keys
from jobs.failover.approvals import Approval, ApprovalStore
from jobs.job_listing import recent_jobs
from jobs.monitor.state import AlertEngine
from jobs.monitor.sweep import load_last
from jobs.periodic import Periodic

log = logging.getLogger("hvbot.home")

MAX_RECENT = 200  # users remembered for refreshes (the oldest opens are dropped first)
RECENT_S = 3600.0  # a user's Home is refreshed after sweeps for an hour after they last opened it
RECENT_PER_PASS = 50  # views republished per sweep, most recent openers first (30 s of Tier 4 at our pace)
MIN_PASS_S = 15.0
PUBLISH_INTERVAL_S = 0.6  # 100 per minute: Tier 4's floor
PACE_CHANNEL = "views.publish"  # the pacer's slot name: one shared budget for the method
JOBS_SCANNED = 100


class HomePublisher:
    def __init__(self, connection: redis.Redis, client: WebClient, authz: Authorizer,
                 approvals: Callable[[], ApprovalStore], queue: str, pace_s: float = PUBLISH_INTERVAL_S) -> None:
        self._redis = connection
        self._client = client
        self._authz = authz
        self._approvals = approvals
        self._queue = queue
        self._engine = AlertEngine(connection)  # read only: the firing alerts of each host
        self._pacer = Pacer(connection, interval_s=pace_s) if pace_s > 0 else None

    # ---- publishing ----------------------------------------------------------------------------------------
    def opened(self, user: str, now: float | None = None) -> None:
        """The user opened the Home tab: remember them (bounded) and publish their view."""
        now = time.time() if now is None else now
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(keys.HOME_RECENT_KEY, {user: now})
            pipe.zremrangebyrank(keys.HOME_RECENT_KEY, 0, -MAX_RECENT - 1)
            pipe.zremrangebyscore(keys.HOME_RECENT_KEY, "-inf", now - RECENT_S)
            pipe.execute()
        self.publish(user, now)

    def publish(self, user: str, now: float | None = None) -> None:
        view = home_view(self.gather(user, time.time() if now is None else now))
        if self._pacer is not None:
            self._pacer.wait_turn(PACE_CHANNEL)
        self._client.views_publish(user_id=user, view=view.to_dict())

    def refresh_after_sweep(self, now: float | None = None) -> int:
        """Republish recent users' views when a sweep stored new results or the pending approvals changed since
        the last pass (a request to decide, or one decided: its buttons must go); returns how many were sent."""
        now = time.time() if now is None else now
        stored = self._redis.get(keys.SWEEP_STORED_KEY)
        pending = sorted(_text(i) for i in self._redis.zrange(keys.approvals_pending_key(), 0, -1))
        state = hashlib.sha256(json.dumps([_text(stored or b""), pending]).encode()).hexdigest()
        if self._redis.getset(keys.HOME_PUBLISHED_KEY, state) == state.encode():
            return 0
        users = [_text(u) for u in self._redis.zrevrangebyscore(
            keys.HOME_RECENT_KEY, "+inf", now - RECENT_S, start=0, num=RECENT_PER_PASS)]
        done = 0
        for user in users:
            try:
                self.publish(user, now)
                done += 1
            except Exception:  # one user's failure (Slack error, a bad record) must not stop the others
                log.exception("App Home refresh failed for %s", user)
        return done

    # ---- what one user sees ----------------------------------------------------------------------------------
    def gather(self, user: str, now: float) -> HomeData:
        role = self._authz.role_of(user)
        sweeps = load_last(self._redis)
        pending = self._pending(now)
        data = HomeData(user=user, role=role, now=now, sweeps=sweeps, alerts=self._alerts(sweeps),
                        jobs=self._jobs(user), drills=self._drills())
        if role is not None:  # someone without a role sees the fleet only, no requests or jobs of others
            data.approvals = [p for a, p in pending if a.requester != user and role == "approver"]
            data.requested = [p for a, p in pending if a.requester == user]
        return data

    def _pending(self, now: float) -> list[tuple[Approval, PendingApproval]]:
        ids = [_text(i) for i in self._redis.zrangebyscore(keys.approvals_pending_key(), now, "+inf")]
        out = []
        for approval_id in ids:
            a = self._approvals().get(approval_id)
            if a is not None and a.status == "pending":
                out.append((a, PendingApproval(a.id, a.kind, describe(a), a.requester, a.expires_at, a.button_value)))
        return out

    def _alerts(self, sweeps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for entry in sweeps:
            for rec in self._engine.active_alerts(entry["host"]).values():
                if rec.get("status") == "firing":
                    out.append({**rec.get("row", {}), "severity": rec.get("severity", "")})
        return out

    def _jobs(self, user: str) -> list[dict[str, str]]:
        return [j for j in recent_jobs(self._redis, self._queue, JOBS_SCANNED) if j["user"] == user]

    def _drills(self) -> dict[str, dict[str, Any]]:
        out = {}
        for field, raw in self._redis.hscan_iter(keys.DRILL_LAST_KEY, match="plan:*", count=1000):
            record = json.loads(raw)
            out[str(record.get("name") or _text(field).removeprefix("plan:"))] = record
        return out


def describe(a: Approval) -> str:
    """One line naming what an approval would run."""
    p = a.params
    if a.kind == "failover":
        return f"{p.get('kind', '')} failover of {p.get('vm', '')}"
    if a.kind == "drill":
        return f"failover drill of {p.get('target', '')}"
    if a.kind == "recovery":
        vms = p.get("vms") or {}
        return f"{p.get('kind', '')} failover of {len(vms)} VMs ({_scope(p.get('plan'))})"
    return a.kind


def _scope(plan: Any) -> str:
    if isinstance(plan, dict):
        return str(plan.get("plan") or "site or host scope")
    return "a plan"


class DirectReply:
    """Bolt's `respond` for a click on the App Home tab, which has no response_url: the answer goes to the clicker's
    direct messages with hvbot (conversations.open, then chat.postMessage)."""

    def __init__(self, client: WebClient, user: str) -> None:
        self._client = client
        self._user = user

    def __call__(self, text: str = "", blocks: Any = None, **_: Any) -> None:
        if not text and not blocks:
            return  # e.g. delete_original: there is no message to delete on Home
        channel = str(self._client.conversations_open(users=self._user)["channel"]["id"])
        self._client.chat_postMessage(channel=channel, text=text, blocks=blocks)


class HomeRefresher(Periodic):
    """In the monitor process: every `tick_s`, republish recent Home views once a sweep stored new results."""

    def __init__(self, publisher: HomePublisher, tick_s: float = 5.0) -> None:
        self._publisher = publisher
        self._tick_s = max(tick_s, 1.0)
        self._last_pass = 0.0
        super().__init__("hvbot-home-refresh", self._tick_s, join_s=10)

    def round(self) -> float:
        if time.monotonic() - self._last_pass < MIN_PASS_S:
            return self._tick_s
        try:
            if self._publisher.refresh_after_sweep():
                self._last_pass = time.monotonic()
        except redis.RedisError as exc:  # other failures are logged with their traceback by Periodic
            log.warning("App Home refresh skipped: Redis unreachable (%s)", type(exc).__name__)
        return self._tick_s


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
