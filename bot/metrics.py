"""Prometheus metrics of the Slack side: commands, acks, Slack Web API calls, the Socket Mode connection.

Names are prefixed `hvbot_`; labels stay bounded: a verb of the grammar (or `unknown`), an outcome word, a
transport, a Slack API method name. Never a user ID, channel, VM name or job id. What jobs count is in
`jobs/metrics.py` (jobs never import bot); gauges are collectors computed at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# Slack shows its user an error when the ack takes over 3 s: the buckets are dense below that.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)

COMMANDS = Counter("hvbot_commands", "/hyperv commands by verb (`unknown` when it did not parse) and outcome: "
                   "ok (answered), invalid (grammar), refused (channel or role), redis_down, error.",
                   ["verb", "outcome"])
ACK_SECONDS = Histogram("hvbot_ack_seconds", "Time from receiving a Slack request to its acknowledgement, "
                        "by transport (http, socket_mode).", ["transport"], buckets=ACK_BUCKETS)
SLACK_CALLS = Counter("hvbot_slack_api_calls", "Slack Web API calls by method and outcome "
                      "(ok, error, rate_limited, connection_error), counted once after the SDK's retries.",
                      ["method", "outcome"])
SLACK_RATE_LIMITED = Counter("hvbot_slack_rate_limited", "HTTP 429 answers from the Slack Web API by method "
                             "(each one, including those the SDK retried after Retry-After).", ["method"])
SOCKET_RECONNECTS = Counter("hvbot_socket_mode_reconnects", "Socket Mode connections opened after the first "
                            "(a dropped or refreshed socket).")


def count_command(verb: str, outcome: str) -> None:
    COMMANDS.labels(verb, outcome).inc()


class SocketModeCollector(Collector):
    """`hvbot_socket_mode_connected`: 1 while the Socket Mode client's socket is open, read at scrape time."""

    def __init__(self, connected: Callable[[], bool]) -> None:
        self._connected = connected

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily("hvbot_socket_mode_connected", "1 while the Socket Mode WebSocket is connected.")
        gauge.add_metric([], 1 if self._connected() else 0)
        yield gauge
