"""A real `hvbot serve` whose Redis is SIGKILLed stays idle: its periodic loops back off instead of spinning.

The abandoned-job watcher used to retry at its normal period and log a full traceback each time; with console
logs (as in tests and `hvbot demo`) rendering that traceback cost about a CPU second, so a serve left behind by a
test whose Redis was gone used a core for as long as it ran. The measure is the process's own CPU time over a
fixed number of failed tries (read from its log), never a wall-clock speed.
"""

from __future__ import annotations

import os
import re
import urllib.request
from pathlib import Path


from bot.adapters.fake_slack import FakeSlack
from tests.support.fixtures_redis import wait_until
from tests.support.fixtures_slack import HvbotProcess, free_port
from tests.support.redis_server import OwnRedis

PERIOD_S = "0.2"  # the watcher's period: at this pace an unbacked-off loop would try 5 times a second
TRIES = 5
# A failed try with backoff costs a Redis connect and a log line: milliseconds. Before the fix each try rendered a
# traceback (~1 CPU s with console logs), so five tries cost several CPU seconds.
CPU_BOUND_S = 1.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _failed_tries(lines: list[str]) -> int:
    counts = [int(m.group(1)) for line in list(lines) if (m := re.search(r"Redis unreachable .*?(\d+) failed", line))]
    return max(counts, default=0)


def test_serve_backs_off_and_stays_idle_while_its_redis_is_gone(own_redis: OwnRedis) -> None:
    port = free_port()
    with FakeSlack() as slack:
        env = {"REDIS_URL": own_redis.url, "SLACK_API_URL": slack.api_url, "SLACK_BOT_TOKEN": "xoxb-test",
               "SLACK_SIGNING_SECRET": "s" * 32, "HVBOT_LOG_JSON": "false",
               "HVBOT_ABANDONED_CHECK_SECONDS": PERIOD_S}
        serve = HvbotProcess(["serve", "--port", str(port), "--host", "127.0.0.1"], env, ready_line="listening on")
        try:
            serve.wait_ready(60)
            assert own_redis.proc is not None
            own_redis.proc.kill()  # SIGKILL: the connection dies without a goodbye, as when a test's Redis is killed
            own_redis.proc.wait(20)
            wait_until(lambda: _failed_tries(serve.lines) >= 1, 60, "the first failed sweep is logged")
            before = cpu_seconds(serve.proc.pid)
            wait_until(lambda: _failed_tries(serve.lines) >= TRIES, 120, f"{TRIES} failed sweeps are logged")
            spent = cpu_seconds(serve.proc.pid) - before
            assert spent < CPU_BOUND_S, f"serve used {spent:.2f} CPU s over {TRIES - 1} failed tries"
            assert not any("Traceback" in line or "╭" in line for line in serve.lines), "an outage is one line"
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
                assert answer.status == 200  # the front still answers while Redis is away

            own_redis.start()  # same port: the watcher finds it at its next try and says so
            wait_until(lambda: any("Redis answers again" in line for line in serve.lines), 120,
                       "the watcher notices Redis is back")
            assert serve.proc.poll() is None
        finally:
            serve.stop()
