"""The README's demo, non-interactively: `printf '/hyperv ips 10.0.4.17\n' | hvbot demo` prints the answer and
exits 0; the console renders a paged result with numbered buttons, and `press N` pages it in place. Piped input
waits for every answer a line started (a failover's preview), and exits 1 naming what never answered; `lab`
commands drive the lab and the demo's monitor posts the alert; `--tour` plays the seed story and checks it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import IO

import redis

from tests.support.fixtures_redis import TEST_QUEUE, test_redis_url


def _exe() -> Path:
    return Path(sys.executable).with_name("hvbot")


def _env() -> dict[str, str]:
    return {**os.environ, "REDIS_URL": test_redis_url(), "HVBOT_QUEUE": f"{TEST_QUEUE}-demo"}


def _demo(stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(_exe()), "demo", *args], input=stdin, capture_output=True, text=True, env=_env(),
                          timeout=600)


def test_demo_answers_piped_ips_and_exits_0(redis_conn: redis.Redis) -> None:
    result = _demo("/hyperv ips 10.0.4.17\n")
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "Lab: 4 simulated Hyper-V hosts" in out and "Redis: " in out
    answer = out.split("replacing its answer):", 1)[1]
    assert "1 row; 4 hosts answered" in answer
    row = next(line for line in answer.splitlines() if "10.0.4.17" in line and "—" not in line)
    assert row.split()[0] == "hv-b2"  # the lab's default fleet puts 10.0.4.17 on hv-b2


def test_console_renders_buttons_and_press_pages_in_place(redis_conn: redis.Redis) -> None:
    result = _demo("vms --host hv-a1\npress 1\nas U999\naudit\n")
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "page 1 of 2" in out and "[1] Next ▸" in out and "[2] Download CSV" in out
    after = out.split("> press 1", 1)[1]
    assert "page 2 of 2" in after and "◂ Prev" in after
    assert "audit needs the approver role" in out


def test_without_redis_server_the_demo_says_it_uses_fakeredis(monkeypatch, lab_inventory_path: Path) -> None:
    import io
    from contextlib import ExitStack

    import fakeredis

    from bot.cli import demo
    from bot.settings import Settings

    monkeypatch.setattr(demo.shutil, "which", lambda name: None)
    with ExitStack() as stack:
        conn, which = demo.choose_redis(stack, "redis://127.0.0.1:1/0")
    assert isinstance(conn, fakeredis.FakeRedis) and "fakeredis" in which
    out = io.StringIO()
    settings = Settings(inventory=lab_inventory_path, queue="hvbot-fake", slack_signing_secret=None)
    code = demo.run_session(settings, io.StringIO("/hyperv ips 10.0.4.17\n"), out, redis_conn=conn, monitor=True)
    assert code == 0 and "Monitor: not started, this Redis cannot run scripts" in out.getvalue()
    assert "1 row; 4 hosts answered" in out.getvalue() and "10.0.4.17" in out.getvalue()


def test_piped_failover_waits_for_the_preview(redis_conn: redis.Redis) -> None:
    result = _demo("/hyperv replication web01\n/hyperv failover web01\n")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    # the demo's monitor has swept before the first line is read
    replication = result.stdout.split("> /hyperv replication web01", 1)[1].split("> /hyperv failover", 1)[0]
    assert "No sweep has run yet" not in replication and "on hv-b1" in replication
    answer = result.stdout.split("Reading the replication state of web01", 1)[1]
    assert "hvbot (only you):" in answer and "failover of web01" in answer.lower()  # the preview, after the ack
    assert "Start-VMFailover" in answer and "] Request" in answer  # its steps and the button to request them


def test_a_drill_request_posts_its_approval_card_after_its_ack(redis_conn: redis.Redis) -> None:
    """The drill listener posts its card while its slash command is being answered: the console must not hold the
    fake Slack's answer until the ack is printed (it did, and the post timed out as an internal error)."""
    result = _demo("/hyperv drill site-a-core\n", "--wait", "20")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    out = result.stdout.split("> /hyperv drill site-a-core", 1)[1]
    ack, card = out.index("Drill of site-a-core requested"), out.index("requests a failover drill of site-a-core")
    assert ack < card and "] Approve" in out[card:]
    assert "internal error" not in out and "Traceback" not in result.stderr


def test_home_shows_the_approvers_tab_and_its_approve_button_runs_the_failover(redis_conn: redis.Redis) -> None:
    """`home` in the console opens the App Home tab (app_home_opened, views.publish); its Approve is the card's.
    The session is driven line by line: the button's number is read from the tab before it is pressed."""
    proc = subprocess.Popen([str(_exe()), "demo", "--wait", "120"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write("/hyperv failover web01\npress 1\nas U200\nhome\n")
        proc.stdin.flush()
        tab = _read_until(proc.stdout, "Last drill per plan").split("> home", 1)[1]
        assert "hvbot (the Home tab of U200):" in tab and "your role: approver" in tab
        assert "Hosts answering: 4 of 4" in tab and "@U100 requests: planned failover of web01" in tab
        approve = re.search(r"\[(\d+)\] Approve", tab.split("planned failover of web01", 1)[1])
        assert approve is not None, tab
        after, errors = proc.communicate(input=f"press {approve.group(1)}\n", timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, after[-3000:] + errors[-2000:]
    assert "approved by U200, running" in after and "Planned failover of web01: done" in after, after[-3000:]


def _read_until(stream: IO[str], marker: str) -> str:
    """Lines of a running demo up to the one holding ``marker`` (the test's timeout bounds a demo that never
    prints it)."""
    seen: list[str] = []
    for line in stream:
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError("the demo ended before printing " + repr(marker) + ":\n" + "".join(seen)[-3000:])


def test_a_line_that_never_answers_exits_1_naming_it(redis_conn: redis.Redis) -> None:
    # a hung host never answers; the job's own host deadline (10 s) is far above the 2 s limit given here
    result = _demo("lab hang hv-a1\n/hyperv vms --host hv-a1\n/hyperv ips 10.0.4.17\n", "--wait", "2")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    out = result.stdout
    assert "lab: hv-a1 accepts connections but never answers" in out
    assert "(no answer within 2 s from:" in out and "(/hyperv vms --host hv-a1 by U100)" in out
    assert "> /hyperv ips" not in out  # piped input stops at the line that never answered
    assert "Traceback" not in result.stderr


def test_lab_power_off_raises_an_alert_in_the_demo(redis_conn: redis.Redis) -> None:
    result = _demo("lab help\nlab power-off hv-a2\nwait-alert hv-a2\nlab status\n")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    out = result.stdout
    assert "Monitor: sweeps every 10 s" in out
    assert "lab power-off HOST" in out and "lab site-down SITE" in out  # the help lists the lab commands
    alert = out.split("> wait-alert hv-a2", 1)[1].split("> lab status", 1)[0]
    assert "hvbot in #hv-oncall:" in alert and "hv-a2" in alert and "unreachable" in alert
    status = out.split("> lab status", 1)[1]
    assert any(line.split()[1:4] == ["hv-a2", "site-a", "down"] for line in status.splitlines() if "hv-a2" in line)


def test_tour_plays_the_seed_story_and_exits_0(redis_conn: redis.Redis) -> None:
    result = _demo("", "--tour")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    out = result.stdout
    for step in ("Power cut on site A", "The alert", "The preview", "The request", "The approval and the failover",
                 "Site A is back", "Reverse replication"):
        assert f"✓ {step}: as narrated" in out
    assert "Recommended: unplanned" in out and "> as U200" in out
    assert "Tour complete: all 7 steps behaved as narrated." in out
