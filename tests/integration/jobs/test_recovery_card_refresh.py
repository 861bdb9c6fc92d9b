"""The live card of a recovery run while its Redis goes away and comes back (a server the test owns).

The refresher redraws when the progress moved; while Redis is down it backs off (interval, 2x, 4x, ... at most
a minute) and logs one traceback per outage, not one per interval; once Redis is back it redraws and returns to
its normal pace.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from jobs.recovery.model import Member, PlanGroup, ResolvedGroup, ResolvedPlan, Scope, ScopeKind
from jobs.recovery.progress import RunProgress
from jobs.recovery.tasks import MAX_REFRESH_BACKOFF_S, CardRefresher
from tests.support.redis_server import OwnRedis


class DrawnCards:
    """The RecoveryReporter port, recording what the card would show."""

    def __init__(self) -> None:
        self.drawn: list[dict[str, Any]] = []

    def progress(self, card: dict[str, Any], run: dict[str, Any]) -> None:
        self.drawn.append(run)

    def finished(self, card: dict[str, Any], run: dict[str, Any]) -> None:
        raise AssertionError("the refresher never draws the final card")


def _plan() -> ResolvedPlan:
    member = Member("web01", "hv-a1", "hv-b1")
    return ResolvedPlan(Scope(ScopeKind.SITE, "site-a"), "",
                        (ResolvedGroup("web", PlanGroup("web", ("web01",)), (member,)),))


def test_refresh_backs_off_while_redis_is_down_and_redraws_when_it_is_back(
        own_redis: OwnRedis, caplog: pytest.LogCaptureFixture) -> None:
    progress = RunProgress(own_redis.client(), "ap-refresh")
    plan = _plan()
    progress.create(plan, {"kind": "unplanned"})
    cards = DrawnCards()
    refresher = CardRefresher(progress, {"channel": "C1", "ts": "1.0"}, cards, interval_s=1.0)
    assert refresher.round() == 1.0 and len(cards.drawn) == 1  # the first round draws at once
    assert refresher.round() == 1.0 and len(cards.drawn) == 1  # nothing moved: no write

    own_redis.stop(save=True)
    with caplog.at_level(logging.WARNING, logger="hvbot.recovery"):
        waits = [refresher.round() for _ in range(9)]
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, MAX_REFRESH_BACKOFF_S, MAX_REFRESH_BACKOFF_S,
                     MAX_REFRESH_BACKOFF_S]
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1 and len(caplog.records) == 9

    own_redis.start()  # the data comes back with it (SHUTDOWN SAVE)
    progress.start(plan.groups[0].vms[0])
    assert refresher.round() == 1.0  # back to the normal pace at once
    assert cards.drawn[-1]["vms"][0]["state"] == "running"
