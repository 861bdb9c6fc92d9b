"""AlertEngine against real Redis (DB 11): storm, flapping, inhibition, resolve, repeat, silence, ack,
snooze and backup-window suppression. Time is simulated: every call passes `now`."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import redis

from jobs.monitor.notifications import Notification, NotificationKind
from jobs.monitor.rules import AlertRouting, AlertRules, HostObservation, ReplicaObservation
from jobs.monitor.state import AlertEngine
from tests.support.fixtures_redis import emptied_db, redis_url_on_db

T0 = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
ROUTING = AlertRouting(critical_channel="#oncall", warning_channel="#ops", oncall_mention="<!subteam^S1>")
K = NotificationKind


def db11() -> redis.Redis:
    """Another client on this part's own Redis database (11)."""
    return redis.Redis.from_url(redis_url_on_db(11))


@pytest.fixture
def r():
    with emptied_db(11) as client:
        yield client


def engine(r, **rules) -> AlertEngine:
    return AlertEngine(r, prefix="t:alerts", rules=AlertRules(routing=ROUTING, **rules))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def vm(name: str, host: str = "hv-a1", site: str = "site-a", t: float = 0, **kw) -> ReplicaObservation:
    base = dict(host=host, site=site, vm=name, mode="Primary", state="Replicating", health="Normal",
                frequency_sec=300, last_replication_time=at(t - 30), successful_count=100, missed_count=0)
    base.update(kw)
    return ReplicaObservation(**base)


def up(host: str = "hv-a1", site: str = "site-a") -> HostObservation:
    return HostObservation(host, site, reachable=True)


def sweep(eng: AlertEngine, t: float, observations: list) -> list[Notification]:
    """One host's sweep result at time t, plus a timer tick 30 s later (the monitor ticks between sweeps)."""
    return eng.ingest(observations, at(t)) + eng.tick(at(t + 30))


def kinds(notes: list[Notification]) -> list[str]:
    return [n.kind.value for n in notes]


def named_vms(notes: list[Notification]) -> set[tuple[str, str]]:
    out = set()
    for n in notes:
        for row in [*n.rows, *(n.attachment_rows or [])]:
            out.add((row.host, row.vm))
    return out


@pytest.mark.parametrize("spacing_s", [0.2, 1.0])  # the 50 host jobs finish within 10 s, or spread over 50 s
def test_storm_is_at_most_three_writes_per_channel_and_names_every_vm(r, spacing_s):
    eng = engine(r, group_by="host")
    hosts = [(f"hv-{i:02d}", f"site-{i % 2}") for i in range(50)]
    fleet = {h: [vm(f"vm-{h}-{j}", h, s) for j in range(10)] for h, s in hosts}
    notes: list[Notification] = []
    for t in range(-60, 121, 60):  # a healthy sweep, then every VM turns Critical at t=0
        for i, (h, s) in enumerate(hosts):  # one sweep job per host, 0.2 s apart
            seen = fleet[h] if t < 0 else [
                replace(o, health="Critical", state="Error", last_replication_time=at(-7200)) for o in fleet[h]
            ]
            notes += eng.ingest([up(h, s), *seen], at(t + i * spacing_s))
        for tick in range(t + 5, min(t + 60, 121), 5):  # the monitor ticks the timers every 5 s
            notes += eng.tick(at(tick))
    per_channel = Counter(n.channel for n in notes)
    assert set(per_channel) == {"#oncall", "#ops"}  # Critical (health, state) and Warning (lag)
    assert all(count <= 3 for count in per_channel.values()), per_channel
    every_vm = {(o.host, o.vm) for vms in fleet.values() for o in vms}
    for channel in per_channel:
        assert named_vms([n for n in notes if n.channel == channel]) == every_vm
    first = next(n for n in notes if n.channel == "#oncall")
    assert first.kind == K.POST_GROUP and first.mention == "<!subteam^S1>"
    assert len(first.rows) <= 40 and first.attachment_rows is not None
    for channel in per_channel:  # the channel's message ends up naming the whole storm
        last = [n for n in notes if n.channel == channel][-1]
        assert last.title.startswith("500 VMs on 50 hosts") and len(last.attachment_rows) >= 500


def test_flapping_vm_gives_one_alert(r):
    eng = engine(r)
    notes = []
    for k in range(12):  # Normal / Critical alternating every sweep
        health = "Critical" if k % 2 == 0 else "Normal"
        notes += sweep(eng, k * 60, [up(), vm("vm1", t=k * 60, health=health)])
    assert kinds(notes) == ["post_group"]
    notes = sweep(eng, 12 * 60, [up(), vm("vm1", t=720)]) + sweep(eng, 13 * 60, [up(), vm("vm1", t=780)])
    assert kinds(notes) == ["resolve"]


def test_resolved_within_group_wait_sends_nothing(r):
    eng = engine(r, resolve_after_sweeps=1)
    notes = eng.ingest([up(), vm("vm1", health="Critical")], at(0))
    notes += eng.ingest([up(), vm("vm1", t=10)], at(10)) + eng.tick(at(40)) + eng.tick(at(100))
    assert notes == []


def test_host_down_gives_one_host_alert_and_no_vm_alerts(r):
    eng = engine(r)
    sweep(eng, 0, [up("hv-a1"), vm("vm1", "hv-a1"), vm("vm2", "hv-a1")])
    down = HostObservation("hv-a1", "site-a", reachable=False, error="connection refused")
    notes = []
    for k in range(1, 5):
        t = k * 60
        replica_side = [vm(n, "hv-b1", "site-b", t=t, mode="Replica", health="Critical", state="Error",
                           partner_host="hv-a1.lab.local") for n in ("vm1", "vm2")]
        notes += eng.ingest([down], at(t)) + eng.ingest([up("hv-b1", "site-b"), *replica_side], at(t + 1))
        notes += eng.tick(at(t + 30))
    assert kinds(notes) == ["post_group"]
    assert notes[0].conditions == ["host_unreachable"] and [row.host for row in notes[0].rows] == ["hv-a1"]
    assert notes[0].vm_count == 0 and notes[0].host_count == 1


def test_resolve_is_a_thread_notice_on_the_stored_message(r):
    eng = engine(r)
    notes = sweep(eng, 0, [up(), vm("vm1", health="Critical"), vm("vm2", health="Critical")])
    assert kinds(notes) == ["post_group"] and notes[0].vm_count == 2
    eng.set_message_ref(notes[0].group_key, {"channel": "C1", "ts": "1700000000.000100"})
    notes = sweep(eng, 60, [up(), vm("vm1", t=60), vm("vm2", t=60, health="Critical")])
    assert notes == []  # one clean sweep is not a resolve (resolve_after_sweeps=2)
    notes = sweep(eng, 120, [up(), vm("vm1", t=120), vm("vm2", t=120, health="Critical")])
    assert kinds(notes) == ["update_group"] and [row.vm for row in notes[0].resolved_rows] == ["vm1"]
    assert [row.vm for row in notes[0].rows] == ["vm2"] and notes[0].message_ref["ts"] == "1700000000.000100"
    notes = sweep(eng, 180, [up(), vm("vm2", t=180)]) + sweep(eng, 240, [up(), vm("vm2", t=240)])
    assert kinds(notes) == ["resolve"] and [row.vm for row in notes[0].resolved_rows] == ["vm2"]
    assert notes[0].message_ref == {"channel": "C1", "ts": "1700000000.000100"}
    assert eng.active_alerts("hv-a1") == {}


def test_repeat_after_repeat_interval_only(r):
    eng = engine(r, repeat_interval_s=3600)
    bad = lambda t: [up(), vm("vm1", t=t, health="Critical")]  # noqa: E731
    notes = []
    for k in range(0, 70):  # 70 sweeps, one a minute
        notes += sweep(eng, k * 60, bad(k * 60))
    assert kinds(notes) == ["post_group", "repeat"]
    assert notes[1].group_key == notes[0].group_key
    assert [row.vm for row in notes[1].rows] == ["vm1"]


def test_ack_stops_repeats_until_resolved(r):
    eng = engine(r, repeat_interval_s=3600)
    notes = sweep(eng, 0, [up(), vm("vm1", health="Critical")])
    assert eng.ack(notes[0].group_key, "U123", at(40))
    later = []
    for k in range(1, 200):
        later += sweep(eng, k * 60, [up(), vm("vm1", t=k * 60, health="Critical")])
    assert later == []
    later = sweep(eng, 200 * 60, [up(), vm("vm1", t=12000)]) + sweep(eng, 201 * 60, [up(), vm("vm1", t=12060)])
    assert kinds(later) == ["resolve"]
    assert not eng.ack("no-such-message", "U123", at(0))


def test_silence_by_vm_and_by_host_expire(r):
    eng = engine(r)
    eng.silence("vm", "VM1", 600, at(0), by="U1")
    eng.silence("host", "hv-b1.lab.local", 300, at(0), by="U1")
    notes = []
    for k in range(0, 12):
        t = k * 60
        notes += sweep(eng, t, [up(), vm("vm1", t=t, health="Critical"), up("hv-b1", "site-b"),
                                 vm("vm7", "hv-b1", "site-b", t=t, health="Critical")])
        if k == 4:
            assert notes == []  # both silenced for the first 5 minutes
    assert kinds(notes) == ["post_group", "post_group"]
    assert named_vms(notes[:1]) == {("hv-b1", "vm7")} and named_vms(notes[1:]) == {("hv-a1", "vm1")}
    assert eng.silences(at(700)) == {}


def test_snooze_mutes_the_group_then_surfaces_it_again(r):
    eng = engine(r)
    notes = sweep(eng, 0, [up(), vm("vm1", health="Critical")])
    eng.snooze(notes[0].group_key, 3600, "U9", at(40))
    later = []
    for k in range(1, 70):
        later += sweep(eng, k * 60, [up(), vm("vm1", t=k * 60, health="Critical")])
    assert kinds(later) == ["update_group", "repeat"]
    assert later[0].rows == [] and later[0].muted_count == 1  # the message shows it is snoozed
    assert [row.vm for row in later[1].rows] == ["vm1"]


def test_backup_window_suppresses_until_it_ends(r):
    eng = engine(r)
    notes = []
    for k in range(0, 10):
        t = k * 60
        notes += sweep(eng, t, [up(), vm("vm1", t=t, state="Suspended", health="Critical", in_backup_window=True),
                                vm("vm2", t=t, health="Critical", under_failover=True)])
    assert notes == []
    notes = sweep(eng, 600, [up(), vm("vm1", t=600, state="Suspended", health="Critical")])
    assert set(kinds(notes)) == {"post_group"} and named_vms(notes) == {("hv-a1", "vm1")}
    assert sorted(c for n in notes for c in n.conditions) == ["health_critical", "replication_state"]


def test_warning_must_persist_n_sweeps_and_goes_to_ops(r):
    eng = engine(r, warning_sweeps=3)
    notes = []
    for k, health in enumerate(["Warning", "Warning", "Normal", "Warning", "Warning"]):
        notes += sweep(eng, k * 60, [up(), vm("vm1", t=k * 60, health=health)])
    assert notes == []
    notes = sweep(eng, 300, [up(), vm("vm1", t=300, health="Warning")])
    assert kinds(notes) == ["post_group"] and notes[0].channel == "#ops" and notes[0].mention is None


def test_vm_joining_updates_the_message_in_place_after_group_interval(r):
    eng = engine(r, group_interval_s=60)
    notes = sweep(eng, 0, [up(), vm("vm1", health="Critical")])
    notes += eng.ingest([up(), vm("vm1", t=45, health="Critical"), vm("vm2", t=45, health="Critical")], at(45))
    assert kinds(notes) == ["post_group"]  # vm2 waits for the group interval
    notes = eng.tick(at(90))
    assert kinds(notes) == ["update_group"] and [row.vm for row in notes[0].rows] == ["vm1", "vm2"]


def test_one_hosts_sweep_does_not_resolve_another_hosts_alerts(r):
    eng = engine(r)
    sweep(eng, 0, [up("hv-a1"), vm("vm1", "hv-a1", health="Critical")])
    for k in range(1, 5):
        assert sweep(eng, k * 60, [up("hv-a2"), vm("vm5", "hv-a2", t=k * 60)]) == []
    assert len(eng.active_alerts("hv-a1")) == 1


def test_concurrent_workers_share_one_state(r):
    eng_a, eng_b = engine(r), engine(r)
    hosts = [f"hv-{i}" for i in range(20)]
    results: list[Notification] = []
    lock = threading.Lock()

    def work(engine_: AlertEngine, mine: list[str]) -> None:
        for h in mine:
            got = engine_.ingest([up(h), vm(f"vm-{h}", h, health="Critical")], at(1))
            with lock:
                results.extend(got)

    threads = [threading.Thread(target=work, args=(e, hosts[i::2])) for i, e in enumerate((eng_a, eng_b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    results += eng_a.tick(at(31)) + eng_b.tick(at(32))
    assert kinds(results) == ["post_group"] and results[0].vm_count == 20


def test_notification_round_trips_through_json(r):
    eng = engine(r)
    note = sweep(eng, 0, [up(), vm("vm1", health="Critical")])[0]
    assert Notification.from_dict(note.to_dict()) == note
