"""Inhibition and silences hold in every message while lab hosts HANG mid-sweep: the real sweep job (RQ worker,
pypsrp over HTTP to the lab, which holds a hung host's requests unanswered), the alert engine in Redis and the
bot's poster writing to the fake Slack Web API. Alert time is simulated (the monitor passes `now`).

What is checked comes from the messages themselves: a host named unreachable in a message stays firing until a
message says it resolved, and while it fires no message may name a VM on it or a VM whose partner it is; no message
may name a VM while the test's silence of it is active."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from bot.adapters.fake_slack import FakeSlack
from bot.delivery.alert_poster import SlackAlertPoster, alert_client
from bot.delivery.alert_routing import alert_rules
from bot.settings import Settings
from jobs import ports
from jobs.hyperv import process_fleet
from jobs.monitor.loop import Monitor
from jobs.monitor.notifications import Notification
from jobs.monitor.rules import AlertRouting, AlertRules, HostObservation, ReplicaObservation
from jobs.monitor.state import AlertEngine
from lab.fleet_file import generated_fleet
from tests.support.fixtures_redis import test_redis_url

ROUTING = AlertRouting(critical_channel="#oncall", warning_channel="#ops")
WRITES = ("chat.postMessage", "chat.update", "files.completeUploadExternal")


@dataclass
class Delivery:
    at: datetime
    notes: list[Notification]
    calls: list[Any]  # the fake Slack calls this delivery made
    files: list[bytes] = field(default_factory=list)


class RecordingPoster:
    """The bot's poster, remembering which notifications went out when and which Slack writes each made."""

    def __init__(self, inner: SlackAlertPoster, slack: FakeSlack) -> None:
        self.inner, self.slack = inner, slack
        self.now = datetime.now(UTC)
        self.deliveries: list[Delivery] = []

    def deliver(self, notes: Sequence[Notification], engine: Any) -> int:
        calls_before, files_before = len(self.slack.calls), set(self.slack.files)
        writes = self.inner.deliver(notes, engine)
        files = [content for fid, content in self.slack.files.items() if fid not in files_before]
        self.deliveries.append(Delivery(self.now, list(notes), self.slack.calls[calls_before:], files))
        return writes


class HangWorld:
    def __init__(self, r: redis.Redis, slack: FakeSlack, lab: Any, poster: RecordingPoster, rules: AlertRules) -> None:
        self.r, self.slack, self.lab, self.poster = r, slack, lab, poster
        self.engine = AlertEngine(r, rules=rules)
        self.queue = Queue("hvbot-muting-test", connection=r, serializer=JSONSerializer)
        self.monitor = Monitor(r, self.queue, list(lab.hosts), self.engine, poster.deliver, interval_s=60)
        self.t0 = datetime.now(UTC).replace(microsecond=0)
        self.silenced: list[tuple[str, datetime, datetime]] = []  # (vm, from, until)

    def at(self, seconds: float) -> datetime:
        return self.t0 + timedelta(seconds=seconds)

    def sweep(self, seconds: float) -> None:
        """One monitor round: a sweep job per host in host order, run by a real RQ worker, so a partner is
        swept before a hung host's sweep has waited out its deadline."""
        self.poster.now = self.at(seconds)
        self.monitor.last_sweep = None
        self.monitor.run_once(self.at(seconds))
        SimpleWorker([self.queue], connection=self.r, serializer=JSONSerializer).work(burst=True)
        assert not self.queue.failed_job_registry.get_job_ids()

    def tick(self, seconds: float) -> None:
        self.poster.now = self.at(seconds)
        self.monitor.tick(self.at(seconds))

    def silence_vm(self, vm: str, seconds: float, duration_s: float) -> None:
        self.engine.silence("vm", vm, duration_s, self.at(seconds), "U100")
        self.silenced.append((vm, self.at(seconds), self.at(seconds + duration_s)))

    def partners(self) -> dict[tuple[str, str], str]:
        """(host, vm) -> the host on the other side of its replication."""
        out = {}
        for name, host in self.lab.fleet.hosts.items():
            for vm in host.vms:
                other = self.lab.fleet.partner(host, vm)
                if other is not None:
                    out[(name, vm.name)] = other[0].name
        return out

    def go_dark(self, host: str) -> list[tuple[str, str]]:
        """`host` hangs (requests held, never answered); its partners report every relationship with it Critical,
        as Hyper-V does when the other server cannot be reached (hyperv.md §3.7). Returns the partners' VMs."""
        self.lab.control(host, "hung", {"on": True})
        hit = [(h, vm) for (h, vm), other in self.partners().items() if other == host]
        for h, vm in hit:
            self.lab.control(h, "replication", {"vm": vm, "health": "Critical", "state": "Error"})
        return hit

    def come_back(self, host: str, partner_vms: list[tuple[str, str]]) -> None:
        self.lab.control(host, "hung", {"on": False})
        for h, vm in partner_vms:
            self.lab.control(h, "replication", {"vm": vm, "health": "Normal", "state": "Replicating"})


@pytest.fixture
def world(redis_conn, make_lab, tmp_path: Path, monkeypatch) -> Iterator[HangWorld]:
    lab = make_lab(fleet=generated_fleet(6, 4))
    inventory = lab.write_inventory(tmp_path / "inventory.yml")
    monkeypatch.setenv("HVBOT_INVENTORY", str(inventory))
    monkeypatch.setenv("HVBOT_DEADLINE_S", "3")  # what a hung host costs a sweep job; a loaded machine answers in it
    monkeypatch.setenv("REDIS_URL", test_redis_url())
    process_fleet._fleet_cache.clear()
    with FakeSlack() as slack:
        settings = Settings(slack_api_url=slack.api_url, slack_bot_token="xoxb-test-token")
        poster = RecordingPoster(SlackAlertPoster(alert_client(settings), None), slack)
        ports.install_poster(poster)  # what the worker's sweep jobs deliver through
        rules = AlertRules.model_validate({**alert_rules(Settings()).model_dump(), "routing": ROUTING})
        yield HangWorld(redis_conn, slack, lab, poster, rules)
    lab.clear_faults()  # release held requests before the lab stops
    for fleet in process_fleet._fleet_cache.values():
        fleet.close()
    process_fleet._fleet_cache.clear()
    ports.install_poster(ports.NoAlertPoster())


def _vm_names(note: Notification) -> set[tuple[str, str]]:
    return {(r.host, r.vm) for r in [*note.rows, *(note.attachment_rows or [])] if r.vm}


def _slack_text(delivery: Delivery) -> str:
    return " ".join(str(c.args.get("blocks", "")) + str(c.args.get("text", "")) for c in delivery.calls
                    if c.method in WRITES) + " ".join(f.decode(errors="replace") for f in delivery.files)


def muted_names_in_messages(w: HangWorld) -> list[str]:
    """Every VM a message named while a host-down alert (as the messages told it) or a silence muted it."""
    partners = w.partners()
    firing_down: set[str] = set()
    problems = []
    for d in w.poster.deliveries:
        silenced = {vm for vm, start, end in w.silenced if start <= d.at < end}
        for note in d.notes:
            firing_down -= {r.host for r in note.resolved_rows if not r.vm}
            firing_down |= {r.host for r in note.rows + (note.attachment_rows or []) if not r.vm}
            for host, vm in _vm_names(note):
                why = ("its host is down" if host in firing_down else
                       "its partner is down" if partners.get((host, vm)) in firing_down else
                       "it is silenced" if vm in silenced else "")
                if why:
                    problems.append(f"{d.at - w.t0} {note.kind.value}: {vm} on {host} ({why})")
        muted_vms = {vm for (host, vm), other in partners.items() if host in firing_down or other in firing_down}
        for vm in sorted(muted_vms | silenced):
            if vm in _slack_text(d):
                problems.append(f"{d.at - w.t0} Slack write names {vm}")
    return problems


def test_no_message_names_a_vm_muted_by_a_hung_host_or_a_silence(world):
    w = world
    w.sweep(0)
    assert w.poster.deliveries == []  # healthy fleet
    loud = [("hv-002", "vm-002-0000"), ("hv-004", "vm-004-0000")]  # pairs whose partners stay up
    for host, vm in loud:
        w.lab.control(host, "replication", {"vm": vm, "health": "Critical"})
    dark_1 = w.go_dark("hv-001")  # hv-000 (its partner) is swept first in every round
    for t in range(60, 241, 60):
        if t == 120:
            w.silence_vm("vm-004-0000", 100, 600)
            dark_3 = w.go_dark("hv-003")
        if t == 180:
            w.come_back("hv-001", dark_1)
        w.sweep(t)
        w.tick(t + 30)
    for t in range(300, 481, 60):  # hv-003 comes back too; both host-down alerts resolve
        if t == 300:
            w.come_back("hv-003", dark_3)
        w.sweep(t)
        w.tick(t + 30)

    assert muted_names_in_messages(w) == []
    notes = [n for d in w.poster.deliveries for n in d.notes]
    named_hosts = {r.host for n in notes for r in n.rows if not r.vm}
    assert {"hv-001", "hv-003"} <= named_hosts  # both hangs were alerted
    assert ("hv-002", "vm-002-0000") in _vm_names(notes[0])  # an unmuted VM is named next to them
    assert ("hv-004", "vm-004-0000") in _vm_names(notes[0])  # and so is this one, before its silence
    resolved_hosts = {r.host for n in notes for r in n.resolved_rows if not r.vm}
    assert {"hv-001", "hv-003"} <= resolved_hosts


def test_a_vm_muted_while_the_poster_waits_its_turn_is_not_named(redis_conn):
    """The poster renders when the channel's turn comes; a host-down alert or a silence that began since the
    notification was built already counts then."""
    engine = AlertEngine(redis_conn, rules=AlertRules(routing=ROUTING, group_wait_s=30))
    t0 = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)

    def vm(name: str, host: str, partner: str) -> ReplicaObservation:
        return ReplicaObservation(host=host, site="site-a", vm=name, mode="Primary", state="Replicating",
                                  health="Critical", frequency_sec=300, last_replication_time=t0, partner_host=partner)

    engine.ingest([HostObservation("hv-a1", "site-a", True), vm("vm-1", "hv-a1", "hv-b1.lab.local"),
                   vm("vm-2", "hv-a1", "hv-b2.lab.local"), vm("vm-3", "hv-a1", "hv-b2.lab.local")], t0)
    [note] = engine.tick(t0 + timedelta(seconds=30))
    assert {r.vm for r in note.rows} == {"vm-1", "vm-2", "vm-3"}
    engine.ingest([HostObservation("hv-b1", "site-b", reachable=False, error="timed out")], t0 + timedelta(seconds=31))
    engine.silence("vm", "vm-2", 600, t0 + timedelta(seconds=31), "U100")
    with FakeSlack() as slack:
        settings = Settings(slack_api_url=slack.api_url, slack_bot_token="xoxb-test-token")
        SlackAlertPoster(alert_client(settings), None).deliver([note], engine)
        [post] = slack.calls_to("chat.postMessage")
    text = str(post.args.get("blocks")) + str(post.args.get("text"))
    assert "vm-3" in text and "vm-1" not in text and "vm-2" not in text
    assert "2 more muted" in text
