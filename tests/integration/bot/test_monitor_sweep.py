"""Replica monitor end to end: the real sweep job (RQ worker, pypsrp over HTTP to the lab), the alert engine in
Redis (DB 9, this part's own), and the bot's poster writing to the fake Slack Web API, which answers 429 when a
channel gets writes in a burst. Alert time is simulated (the monitor passes `now`); Slack pacing is real."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from click.testing import CliRunner
from rq import Queue
from rq.serializers import JSONSerializer

import bot.adapters.fake_slack as fake_slack_module
from bot.adapters.fake_slack import FakeSlack
from bot.delivery.alert_poster import SlackAlertPoster, alert_client, alert_poster
from bot.delivery.alert_routing import alert_rules
from bot.delivery.pacing import Pacer
from bot.settings import Settings
from jobs import ports as reporting
from jobs.backup.window import WindowStore
from jobs.hyperv import process_fleet
from jobs.monitor import sweep
from jobs.monitor.loop import Monitor, MonitorAlreadyRunning, MonitorLease
from jobs.monitor.rules import AlertRouting, AlertRules
from jobs.monitor.state import AlertEngine
from lab.fleet_file import generated_fleet
from tests.support.fixtures_redis import emptied_db, redis_url_on_db
from tests.support.workers import work_dry

ROUTING = AlertRouting(critical_channel="#oncall", warning_channel="#ops", oncall_mention="<!subteam^S0ONCALL>")
WRITES = ("chat.postMessage", "chat.update", "files.completeUploadExternal")


def _db9_url() -> str:
    return redis_url_on_db(9)


class _BurstHandler(fake_slack_module._Handler):
    """Slack's ~1 write/s/channel: a second write to a channel within 0.9 s of the last one gets 429."""

    def _handle(self, raw: bytes) -> None:
        path = urlsplit(self.path)
        method = path.path.rsplit("/", 1)[-1]
        if path.path.startswith("/api/") and method in WRITES:
            args = fake_slack_module._parse_args(raw, self.headers.get("Content-Type", ""), path.query)
            channel = str(args.get("channel") or args.get("channel_id") or "")
            if self.fake.burst(channel):  # type: ignore[attr-defined]
                self.fake._record(fake_slack_module.Call(method, args, 429, path.path))
                body = json.dumps({"ok": False, "error": "ratelimited"}).encode()
                return self._send(429, body, "application/json", {"Retry-After": "1"})
        super()._handle(raw)


class BurstySlack(FakeSlack):
    def __init__(self) -> None:
        super().__init__()
        self._server.RequestHandlerClass = type("Handler", (_BurstHandler,), {"fake": self})
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def burst(self, channel: str) -> bool:
        with self._lock:
            now = time.monotonic()
            if now - self._last.get(channel, -10.0) < 0.9:
                return True
            self._last[channel] = now
            return False


@pytest.fixture
def r() -> Iterator[redis.Redis]:
    with emptied_db(9) as client:
        yield client


@pytest.fixture
def slack() -> Iterator[BurstySlack]:
    with BurstySlack() as fake:
        yield fake


@pytest.fixture
def world(r, slack, make_lab, tmp_path, monkeypatch):
    """Returns a factory: world(hosts, vms_per_host, **rules) -> World."""

    def build(hosts: int, vms_per_host: int, **rules: Any) -> World:
        lab = make_lab(fleet=generated_fleet(hosts, vms_per_host))
        inventory = lab.write_inventory(tmp_path / "inventory.yml")
        monkeypatch.setenv("HVBOT_INVENTORY", str(inventory))
        monkeypatch.setenv("REDIS_URL", _db9_url())
        monkeypatch.setenv("SLACK_API_URL", slack.api_url)
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
        process_fleet._fleet_cache.clear()
        reporting.install_poster(alert_poster(Settings(), r))  # what a worker installs, from the environment above
        base = alert_rules(Settings()).model_dump()  # what `hvbot monitor` runs with, then the test's routing
        return World(r, slack, lab, inventory, AlertRules.model_validate({**base, "routing": ROUTING, **rules}))

    yield build
    for fleet in process_fleet._fleet_cache.values():
        fleet.close()
    process_fleet._fleet_cache.clear()
    reporting.install_poster(reporting.NoAlertPoster())


class World:
    def __init__(self, r: redis.Redis, slack: BurstySlack, lab: Any, inventory: Path, rules: AlertRules) -> None:
        self.r, self.slack, self.lab, self.inventory = r, slack, lab, inventory
        self.engine = AlertEngine(r, rules=rules)
        self.rules = rules
        settings = Settings(slack_api_url=slack.api_url, slack_bot_token="xoxb-test-token")
        self.poster = SlackAlertPoster(alert_client(settings), Pacer(r, interval_s=1.0))
        self.queue = Queue("hvbot-monitor-test", connection=r, serializer=JSONSerializer)
        self.monitor = Monitor(r, self.queue, list(lab.hosts), self.engine, self.poster.deliver, interval_s=60)
        self.t0 = datetime.now(UTC).replace(microsecond=0)

    def at(self, seconds: float) -> datetime:
        return self.t0 + timedelta(seconds=seconds)

    def sweep(self, seconds: float) -> None:
        """One monitor round at t0+seconds: sweep jobs for every host, run by a real RQ worker."""
        self.monitor.last_sweep = None
        self.monitor.run_once(self.at(seconds))
        work_dry(self.queue, self.r)
        failed = self.queue.failed_job_registry.get_job_ids()
        assert not failed, f"sweep jobs failed: {failed}"

    def tick(self, seconds: float) -> None:
        self.monitor.tick(self.at(seconds))

    def set(self, host: str, vm: str, **fields: Any) -> None:
        self.lab.control(host, "replication", {"vm": vm, **fields})

    def writes(self, channel: str | None = None, ok_only: bool = True) -> list[Any]:
        out = []
        for c in self.slack.calls:
            if c.method not in WRITES or (ok_only and c.status != 200):
                continue
            if channel is None or (c.args.get("channel") or c.args.get("channel_id")) == channel:
                out.append(c)
        return out

    def posts(self) -> list[Any]:
        return [c for c in self.writes() if c.method == "chat.postMessage"]


def _text(call: Any) -> str:
    blocks = call.args.get("blocks")
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks or []
    return json.dumps(blocks) + str(call.args.get("text", ""))


def _primaries(lab: Any) -> list[tuple[str, str]]:
    return [(h, vm.name) for h, host in lab.fleet.hosts.items() for vm in host.vms
            if vm.replication is not None and vm.replication.mode == "Primary"]


def test_storm_500_vms_on_50_hosts_is_at_most_3_writes_per_channel_and_names_every_vm(world):
    w = world(50, 12)
    per_host: dict[str, list[tuple[str, str]]] = {}
    for host, vm in _primaries(w.lab):
        per_host.setdefault(host, []).append((host, vm))
    vms = [pair for pairs in per_host.values() for pair in pairs[:10]]
    assert len(vms) == 500 and len(per_host) == 50
    w.sweep(0)
    for host, vm in vms:
        w.set(host, vm, health="Critical")
    w.slack.fail_next("chat.postMessage", 1, 429, retry_after=1)  # and the bursty fake adds its own
    w.sweep(60)
    for t in range(65, 181, 5):  # the monitor's timer runs; a second full sweep at 120 s
        if t == 120:
            w.sweep(120)
        w.tick(t)
    per_channel = Counter((c.args.get("channel") or c.args.get("channel_id")) for c in w.writes())
    assert per_channel and max(per_channel.values()) <= 3, per_channel
    assert w.slack.calls_to("chat.postMessage")[0].status == 429  # a 429 happened and was waited out
    named = set()
    for c in w.writes():
        named |= {(h, vm) for h, vm in vms if vm in _text(c)}
    for content in w.slack.files.values():
        rows = list(csv.DictReader(io.StringIO(content.decode())))
        named |= {(row["host"], row["vm"]) for row in rows}
    assert named == set(vms)
    assert "<!subteam^S0ONCALL>" in _text(w.posts()[0])


def test_flapping_vm_gives_one_alert(world):
    w = world(2, 2)
    for i in range(8):
        health = "Critical" if i % 2 == 0 else "Normal"
        w.set("hv-000", "vm-000-0000", health=health)
        w.sweep(i * 60)
        w.tick(i * 60 + 30)
    assert len(w.posts()) == 1
    assert "vm-000-0000" in _text(w.posts()[0])
    assert not [c for c in w.posts() if c.args.get("thread_ts")]  # never resolved in between


def test_host_down_is_one_host_alert_and_no_vm_alerts(world):
    w = world(2, 3)
    w.sweep(0)
    w.lab.control("hv-000", "power_loss", {})
    w.sweep(60)
    w.tick(90)
    w.sweep(120)
    w.tick(150)
    posts = w.posts()
    assert len(posts) == 1, [_text(p) for p in posts]
    assert "hv-000" in _text(posts[0]) and "unreachable" in _text(posts[0])
    assert "vm-00" not in _text(posts[0])  # the partner's Critical replicas are inhibited
    assert "0 VMs" not in _text(posts[0]) and "1 host" in _text(posts[0])  # a host alert counts hosts, not VMs


def test_resolve_updates_in_place_and_replies_in_thread(world):
    w = world(2, 2)
    w.set("hv-000", "vm-000-0001", health="Critical")
    w.sweep(0)
    w.tick(30)
    [post] = w.posts()
    w.set("hv-000", "vm-000-0001", health="Normal")
    w.sweep(60)
    w.sweep(120)
    w.tick(150)
    ts = post.response["ts"]
    updates = [c for c in w.writes() if c.method == "chat.update"]
    replies = [c for c in w.posts() if c.args.get("thread_ts") == ts]
    assert updates and updates[-1].args["ts"] == ts and "Resolved" in _text(updates[-1])
    assert len(replies) == 1 and "vm-000-0001" in _text(replies[0])


def test_unacknowledged_alert_repeats_after_the_repeat_interval(world):
    w = world(2, 2, repeat_interval_s=600)
    w.set("hv-001", "vm-001-0000", state="Error")
    for t in range(0, 721, 60):
        w.sweep(t)
        w.tick(t + 30)
    posts = w.posts()
    assert len(posts) == 2 and all("vm-001-0000" in _text(p) for p in posts)


def test_silenced_vm_posts_nothing(world):
    w = world(2, 2)
    w.engine.silence("vm", "vm-000-0000", 3600, w.at(0), "U100")
    w.set("hv-000", "vm-000-0000", health="Critical")
    for t in (0, 60, 120):
        w.sweep(t)
        w.tick(t + 30)
    assert w.writes() == []


def _message_key(w: World) -> str:
    [key] = [k.decode() for k in w.r.hgetall("hvbot:alerts:msgs")]
    return key


def test_ack_stops_repeats(world):
    # The lab's replication times stand still while alert time moves: runs stay below the lag threshold.
    w = world(2, 2, repeat_interval_s=300)
    w.set("hv-000", "vm-000-0000", health="Critical")
    w.sweep(0)
    w.tick(30)
    assert len(w.posts()) == 1
    assert w.engine.ack(_message_key(w), "U100", w.at(40))  # what the Ack button calls
    for t in range(60, 721, 60):
        w.sweep(t)
        w.tick(t + 30)
    assert len(w.posts()) == 1


def test_snooze_mutes_the_group_until_it_ends(world):
    w = world(2, 2, repeat_interval_s=300)
    w.set("hv-000", "vm-000-0000", health="Critical")
    w.sweep(0)
    w.tick(30)
    assert w.engine.snooze(_message_key(w), 300, "U100", w.at(40))  # what the Snooze button calls
    w.set("hv-000", "vm-000-0001", health="Critical")  # joins the snoozed group: stays quiet
    for t in range(60, 301, 60):
        w.sweep(t)
        w.tick(t + 30)
    assert len(w.posts()) == 1 and not any("vm-000-0001" in _text(c) for c in w.writes())
    for t in range(360, 481, 60):  # the snooze ended at 340 s: the group surfaces again
        w.sweep(t)
        w.tick(t + 30)
    assert any("vm-000-0001" in _text(c) for c in w.writes())


def test_no_alert_for_a_vm_in_its_backup_window(world):
    w = world(2, 2)
    WindowStore(w.r).open("vm-000-0001", "hv-000", "primary", w.at(-60), w.at(3600), "U100")
    w.set("hv-000", "vm-000-0001", state="Suspended", health="Warning")
    for t in range(0, 300, 60):
        w.sweep(t)
        w.tick(t + 30)
    assert w.writes() == []
    w.set("hv-000", "vm-000-0000", state="Suspended")  # the same state outside a window does alert
    w.sweep(300)
    w.tick(330)
    assert len(w.posts()) == 1 and "vm-000-0000" in _text(w.posts()[0])


def test_last_sweep_answers_with_its_age(world):
    w = world(2, 2)
    w.sweep(0)
    entries = sweep.load_last(w.r, ["hv-000"])
    assert [e["host"] for e in entries] == ["hv-000"]
    assert entries[0]["at"] == w.at(0).timestamp() and len(entries[0]["vms"]) == 4


def test_a_second_monitor_refuses_to_start(r, tmp_path, monkeypatch):
    first = MonitorLease(r, ttl_s=30)
    first.acquire()
    with pytest.raises(MonitorAlreadyRunning, match="already running"):
        MonitorLease(r, ttl_s=30).acquire()
    inventory = tmp_path / "inv.yml"
    inventory.write_text("hosts:\n  - name: hv-x\n    url: http://127.0.0.1:1/wsman\n    username: u\n    password: p\n")
    monkeypatch.setenv("REDIS_URL", _db9_url())
    monkeypatch.setenv("HVBOT_INVENTORY", str(inventory))
    from bot.cli import main

    result = CliRunner().invoke(main, ["monitor"])
    assert result.exit_code != 0 and "Another hvbot monitor is already running" in result.output
    first.release()
    second = MonitorLease(r, ttl_s=30)
    second.acquire()  # free again once the first released
    second.release()


def test_no_alert_for_a_vm_under_a_running_failover(world):
    w = world(2, 2)
    w.r.set("hvbot:lock:vm:vm-000-0000", "token", ex=600)  # jobs.failover.approvals.VmLock held by the failover job
    w.r.sadd("hvbot:approvals:executing", "ap1")  # and an executing approval naming another VM
    w.r.hset("hvbot:approval:ap1", mapping={"params": json.dumps({"vm": "vm-001-0000", "kind": "planned"})})
    w.set("hv-000", "vm-000-0000", health="Critical", state="Error")
    w.set("hv-001", "vm-001-0000", health="Critical")
    for t in (0, 60, 120):
        w.sweep(t)
        w.tick(t + 30)
    assert w.writes() == []
    last = {v["vm"]: v for e in sweep.load_last(w.r) for v in e["vms"] if e["host"] == "hv-000"}
    assert last["vm-000-0000"]["under_failover"] is True


def test_a_simple_worker_opens_every_host_session_before_its_first_sweep(world):
    w = world(4, 2)
    thread = process_fleet.warm_fleet_in_background()
    assert thread is not None
    thread.join(timeout=30)
    fleet = process_fleet.fleet()
    assert all(fleet.session(h).is_open for h in fleet.hosts)
    opened = fleet.exchanges()
    w.sweep(0)
    for h in fleet.hosts:
        fleet.session(h).settle()
    # one Command + Receive(s) + Signal per host job: no pool opens left for the sweep
    assert fleet.exchanges() - opened <= 4 * len(fleet.hosts)


def test_a_sweep_of_many_hosts_runs_as_jobs_of_several_hosts_each_with_per_host_errors(world):
    w = world(6, 2)
    w.monitor.hosts_per_job = 4
    w.lab.control("hv-001", "power_loss", {})
    w.monitor.last_sweep = None
    queued = w.monitor.run_once(w.at(0))["swept"]
    jobs = [w.queue.fetch_job(i) for i in w.queue.job_ids]
    assert queued == list(w.lab.hosts)
    assert [j.kwargs["hosts"] for j in jobs] == [list(w.lab.hosts)[:4], list(w.lab.hosts)[4:]]
    work_dry(w.queue, w.r)
    assert not w.queue.failed_job_registry.get_job_ids()
    entries = {e["host"]: e for e in sweep.load_last(w.r)}
    assert sorted(entries) == sorted(w.lab.hosts)
    assert entries["hv-001"]["error"] and not entries["hv-001"]["vms"]  # the host that is down, on its own
    assert all(not e["error"] and e["vms"] for h, e in entries.items() if h != "hv-001")
    assert not w.r.keys("hvbot:sweep:pending:*")  # every host can be swept again next round
