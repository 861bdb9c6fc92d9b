"""The README's demo, non-interactively: `printf '/hyperv ips 10.0.4.17\n' | hvbot demo` prints the answer and
exits 0; the console renders a paged result with numbered buttons, and `press N` pages it in place."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import redis

from tests.support.fixtures_redis import TEST_QUEUE, test_redis_url


def _demo(stdin: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("hvbot")
    env = {**os.environ, "REDIS_URL": test_redis_url(), "HVBOT_QUEUE": f"{TEST_QUEUE}-demo"}
    return subprocess.run([str(exe), "demo"], input=stdin, capture_output=True, text=True, env=env, timeout=180)


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
    demo.run_session(settings, io.StringIO("/hyperv ips 10.0.4.17\n"), out, redis_conn=conn)
    assert "1 row; 4 hosts answered" in out.getvalue() and "10.0.4.17" in out.getvalue()
