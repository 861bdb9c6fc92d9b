"""Slack Web API calls counted by method and outcome, and every 429 counted, through the real WebClient against
the fake Slack Web API; and the names the dashboard and the rules use, checked against the live registry."""

from __future__ import annotations

import pytest
import redis
from prometheus_client import REGISTRY, CollectorRegistry
from slack_sdk.errors import SlackApiError

import bot.cli.monitor  # noqa: F401  # every process's metrics are defined once their entry points are imported
import bot.cli.serve  # noqa: F401
import bot.cli.worker  # noqa: F401
from bot.adapters.fake_slack import FakeSlack
from bot.delivery.slack import web_client
from bot.metrics import SocketModeCollector
from bot.settings import Settings
from jobs.monitor import heartbeat
from jobs.state_metrics import RedisStateCollector
from tests.support.fixtures_slack import BOT_TOKEN
from tests.support.scrape import Scrape, missing_names, used_names


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_calls_and_429s_are_counted_by_method(fake_slack: FakeSlack) -> None:
    client = web_client(Settings(slack_bot_token=BOT_TOKEN, slack_api_url=fake_slack.api_url))
    ok, limited = _sample("hvbot_slack_api_calls_total", method="chat.postMessage", outcome="ok"), \
        _sample("hvbot_slack_rate_limited_total", method="chat.postMessage")
    fake_slack.fail_next("chat.postMessage", 1, status=429, retry_after=0)
    client.chat_postMessage(channel="C100", text="retried once, then posted")
    assert _sample("hvbot_slack_api_calls_total", method="chat.postMessage", outcome="ok") == ok + 1
    assert _sample("hvbot_slack_rate_limited_total", method="chat.postMessage") == limited + 1

    failed = _sample("hvbot_slack_api_calls_total", method="chat.postMessage", outcome="rate_limited")
    fake_slack.fail_next("chat.postMessage", 4, status=429, retry_after=0)  # one more than the handler retries
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C100", text="never posted")
    assert _sample("hvbot_slack_rate_limited_total", method="chat.postMessage") == limited + 5
    assert _sample("hvbot_slack_api_calls_total", method="chat.postMessage", outcome="rate_limited") == failed + 1

    errors = _sample("hvbot_slack_api_calls_total", method="chat.update", outcome="error")
    fake_slack.fail_next("chat.update", 1, status=400)
    with pytest.raises(SlackApiError):
        client.chat_update(channel="C100", ts="1.2", text="x")
    assert _sample("hvbot_slack_api_calls_total", method="chat.update", outcome="error") == errors + 1


def test_dashboard_and_rules_use_only_names_the_live_registry_exports(redis_conn: redis.Redis) -> None:
    heartbeat.write(redis_conn, heartbeat.Heartbeat(at=1.0, swept_at=1.0, interval_s=60, tick_s=5, holder="t",
                                                    hosts=0))
    scraped = CollectorRegistry()  # what serve in Socket Mode and the monitor add to the default registry
    scraped.register(RedisStateCollector(redis_conn, ["hvbot"]))
    scraped.register(SocketModeCollector(lambda: True))
    exported: set[str] = set()
    for registry in (REGISTRY, scraped):
        for family in registry.collect():
            exported |= {family.name, *(s.name for s in family.samples)}
            exported |= {family.name + suffix for suffix in Scrape.SUFFIXES[family.type]}
    assert sum(len(names) for names in used_names().values()) > 20  # the files were read
    assert missing_names(exported) == {}
    assert missing_names(exported - {"hvbot_rq_workers"}) != {}  # a name nobody exports is caught
