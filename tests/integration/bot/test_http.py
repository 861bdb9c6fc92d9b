"""`hvbot serve` over HTTP + `hvbot worker` on real Redis + the lab over pypsrp + the fake Slack Web API.

Signed slash commands and block_actions; bad/stale signatures; ephemeral answers via response_url;
--here messages posted once and updated in place; a 429 with Retry-After waited out; paging and CSV.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.adapters.fake_slack import FakeSlack
from tests.support.fixtures_redis import TEST_QUEUE, test_redis_url
from tests.support.fixtures_slack import (
    BOT_TOKEN,
    SIGNING_SECRET,
    HvbotProcess,
    action_body,
    free_port,
    post,
    signed_headers,
    slash_body,
)


class Served:
    def __init__(self, port: int, fake: FakeSlack, conn: redis.Redis) -> None:
        self.port, self.fake, self.redis = port, fake, conn

    def slash(self, text: str, **kw: Any) -> tuple[int, str]:
        body = slash_body(text, response_url=self.fake.response_url(f"r{time.monotonic_ns()}"), **kw)
        return post(self.port, body, signed_headers(body))


@pytest.fixture(scope="module")
def served(lab_inventory_path: Path) -> Iterator[Served]:
    conn = redis.Redis.from_url(test_redis_url())
    conn.flushdb()
    port = free_port()
    with FakeSlack() as fake:
        env = {
            "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake.api_url,
            "REDIS_URL": test_redis_url(), "HVBOT_INVENTORY": str(lab_inventory_path), "HVBOT_ROWS_PER_PAGE": "10",
            "HVBOT_CHANNEL_POST_INTERVAL_SECONDS": "0", "HVBOT_LOG_JSON": "false",
            "HVBOT_QUEUE": TEST_QUEUE,
        }
        server = HvbotProcess(["serve", "--port", str(port), "--host", "127.0.0.1"], env, "listening on")
        worker = HvbotProcess(["worker", "--name", f"test-http-{port}"], env)
        try:
            server.wait_ready()
            yield Served(port, fake, conn)
        finally:
            server.stop()
            worker.stop()
            conn.flushdb()


def _final(calls: list[Any], method: str, job_id: str) -> Any:
    for call in calls:
        if call.method == method and call.status == 200 and f"job {job_id}" in json.dumps(call.args):
            if not str(call.args.get("text", "")).startswith("Working on"):
                return call
    return None


def _paging(call: Any) -> tuple[int, int]:
    import re

    match = re.search(r"(\d+) rows \(rows 1\u201310, page 1 of (\d+)\)", call.args["text"])
    assert match, call.args["text"]
    return int(match.group(1)), int(match.group(2))


def _job_id(ack: str) -> str:
    import re

    match = re.search(r"job (hv[0-9a-f]+)", ack)
    assert match, ack
    return match.group(1)


def test_bad_or_stale_signature_is_401(served: Served) -> None:
    body = slash_body("ips 10.0.4.17")
    assert post(served.port, body, signed_headers(body, secret="wrong-secret"))[0] == 401
    assert post(served.port, body, signed_headers(body, timestamp=int(time.time()) - 400))[0] == 401
    block = action_body("hvbot_page_next", "hvx:1")
    assert post(served.port, block, signed_headers(block, secret="wrong-secret"))[0] == 401
    assert served.redis.llen(f"rq:queue:{TEST_QUEUE}") == 0


def test_ips_lookup_answers_the_requester_through_response_url(served: Served) -> None:
    status, ack = served.slash("ips 10.0.4.17")
    assert status == 200 and "Working on" in ack
    job_id = _job_id(ack)
    call = served.fake.wait_for(lambda calls: _final(calls, "response_url", job_id), timeout=60)
    assert call.args["replace_original"] is True and call.args["response_type"] == "ephemeral"
    text = json.dumps(call.args["blocks"])
    assert "10.0.4.17" in text and "1 row;" in text
    assert not served.fake.calls_to("chat.postMessage") or all(
        f"job {job_id}" not in json.dumps(c.args) for c in served.fake.calls_to("chat.postMessage"))


def test_memory_reads_in_gib_and_at_max_reaches_the_worker(served: Served) -> None:
    status, ack = served.slash("memory web01")
    call = served.fake.wait_for(lambda calls: _final(calls, "response_url", _job_id(ack)), timeout=60)
    text = json.dumps(call.args["blocks"])
    assert status == 200 and "16 GiB" in text and "17179869184" not in text and "at max" in text
    status, ack = served.slash("memory --at-max")  # the default lab's running SQL servers are at their maximum
    call = served.fake.wait_for(lambda calls: _final(calls, "response_url", _job_id(ack)), timeout=60)
    text = json.dumps(call.args["blocks"], ensure_ascii=False)
    assert "4 VMs at their maximum" in text and all(f"sql0{i}" in text for i in range(1, 5)) and "web01" not in text
    assert text.count("◆ at max") == 4
    status, ack = served.slash("memory web01 --at-max")  # present, not at its maximum
    call = served.fake.wait_for(lambda calls: _final(calls, "response_url", _job_id(ack)), timeout=60)
    text = json.dumps(call.args["blocks"])
    assert "0 VMs at their maximum" in text and "No VM has reached its dynamic memory maximum" in text


def test_here_posts_once_updates_in_place_and_waits_out_429(served: Served) -> None:
    served.fake.fail_next("chat.update", times=1, status=429, retry_after=1)
    status, ack = served.slash("vms --here")
    assert status == 200
    job_id = _job_id(ack)
    update = served.fake.wait_for(lambda calls: _final(calls, "chat.update", job_id), timeout=60)
    posts = [c for c in served.fake.calls_to("chat.postMessage") if f"job {job_id}" in json.dumps(c.args)]
    assert len(posts) == 1 and posts[0].response["ts"] == update.args["ts"]
    limited = [c for c in served.fake.calls_to("chat.update") if c.status == 429]
    assert limited and update.at - limited[0].at >= 1.0  # Retry-After: 1 was honoured, then it succeeded
    total, pages = _paging(update)
    assert total > 10 and pages == -(-total // 10) and "hvbot_page_next" in json.dumps(update.args["blocks"])


def test_block_actions_page_and_csv(served: Served) -> None:
    status, ack = served.slash("vms --here")
    job_id = _job_id(ack)
    update = served.fake.wait_for(lambda calls: _final(calls, "chat.update", job_id), timeout=60)
    total, pages = _paging(update)
    ts, start = update.args["ts"], len(served.fake.calls)
    body = action_body("hvbot_page_next", f"{job_id}:1", message_ts=ts, response_url=served.fake.response_url("page"))
    assert post(served.port, body, signed_headers(body))[0] == 200
    paged = served.fake.wait_for(lambda calls: [c for c in calls[start:] if c.method == "chat.update"], 30)[0]
    assert paged.args["ts"] == ts and f"page 2 of {pages}" in json.dumps(paged.args["blocks"])
    body = action_body("hvbot_csv", job_id, message_ts=ts, response_url=served.fake.response_url("csv"))
    assert post(served.port, body, signed_headers(body))[0] == 200
    done = served.fake.wait_for(
        lambda calls: [c for c in calls[start:] if c.method == "files.completeUploadExternal"], 30)[0]
    files = done.args["files"]
    file_id = (json.loads(files) if isinstance(files, str) else files)[0]["id"]
    assert done.args["channel_id"] == "C100" and done.args["thread_ts"] == ts  # in the message's thread
    csv_text = served.fake.files[file_id].decode()
    assert len([line for line in csv_text.splitlines()[1:] if line.strip()]) == total
    assert "fw01" in csv_text and all(h in csv_text for h in ("hv-a1", "hv-a2", "hv-b1", "hv-b2"))


def test_refused_and_invalid_commands_answer_clearly(served: Served) -> None:
    status, ack = served.slash("audit 5")
    assert status == 200 and "needs the *approver* role" in ack
    status, ack = served.slash("checkpoits web01")
    assert status == 200 and "Did you mean `checkpoints`" in ack


def test_a_down_host_is_one_clear_line_and_other_hosts_still_answer(served: Served, clean_lab: Any) -> None:
    clean_lab.control("hv-a2", "down", {})
    try:
        status, ack = served.slash("ips")
        job_id = _job_id(ack)
        call = served.fake.wait_for(lambda calls: _final(calls, "response_url", job_id), timeout=60)
    finally:
        clean_lab.control("hv-a2", "up", {})  # lab.clear_faults() does not bring a manually downed host back
    blocks = json.dumps(call.args["blocks"])
    assert "3 hosts answered, 1 with errors" in call.args["text"]
    error_lines = [line for line in blocks.split("\\n") if "hv-a2" in line]
    assert len(error_lines) == 1 and ":warning: *hv-a2*" in error_lines[0]
    assert "hv-a1" in blocks  # rows of the hosts that answered are still shown (page 1 of them)
