"""Replica-VM backup readiness and backup windows against the lab (pypsrp over HTTP) and real Redis.

fw01 runs on hv-a1 (primary) and is replicated to hv-b1; the lab's clock is frozen and moved by the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from jobs.backup import operations as backup
from jobs.backup.settings import BackupSettings
from jobs.backup.window import WindowStatus
from jobs.hyperv.fleet import Fleet
from jobs.hyperv.hosts import load_inventory
from lab.fleet import Lab
from lab.fleet_file import default_fleet

VM = "fw01"
SETTINGS = BackupSettings(resume_verify_s=5, resume_poll_s=0.05, alert_after_failures=2, resume_first_delay_s=30)


@pytest.fixture
def frozen(make_lab: Callable[..., Lab]) -> Lab:
    lab = make_lab(fleet=default_fleet())
    lab.fleet.apply_control("clock", {"freeze": True})
    return lab


@pytest.fixture
def fleet(frozen: Lab, tmp_path: Path) -> Iterator[Fleet]:
    with Fleet(load_inventory(frozen.write_inventory(tmp_path / "inv.yml"))) as f:
        yield f


def condition(lab: Lab, name: str, on: bool = True, **extra: object) -> None:
    lab.fleet.apply_control("backup_condition", {"host": "hv-b1", "vm": VM, "condition": name, "on": on, **extra})


# (lab condition, extra args, condition number named, transient)
CASES = [
    ("log_apply", {"apply_seconds": 5}, 1, True),
    ("apply_failed", {}, 3, False),
    ("health_critical", {}, 4, False),
    ("resync_required", {}, 5, False),
    ("resync_in_progress", {"seconds": 600}, 5, True),
    ("migration", {}, 6, True),
    ("initial_replication", {}, 7, True),
    ("failover", {}, 8, True),
    ("test_vm", {}, 8, False),
]


def test_ready_when_nothing_holds(frozen: Lab, fleet: Fleet) -> None:
    readiness = backup.check(fleet, VM)
    assert readiness.ready, readiness.summary()
    assert "Not checked or only partly checked: #1, #2, #3" in readiness.summary()


@pytest.mark.parametrize(("name", "extra", "number", "transient"), CASES, ids=[c[0] for c in CASES])
def test_each_condition_is_named_then_cleared(frozen: Lab, fleet: Fleet, name: str, extra: dict[str, object],
                                              number: int, transient: bool) -> None:
    condition(frozen, name, **extra)
    readiness = backup.check(fleet, VM)
    assert not readiness.ready
    assert number in [c.number for c in readiness.holding], readiness.summary()
    assert readiness.transient is transient
    condition(frozen, name, on=False)
    if name == "log_apply":
        frozen.fleet.apply_control("clock", {"advance_s": 5})  # the apply under way ends
    assert backup.check(fleet, VM).ready, backup.check(fleet, VM).summary()


def test_primary_is_not_a_replica_vm(frozen: Lab, fleet: Fleet) -> None:
    pair = backup.locate(fleet, VM)
    assert (pair.replica_host, pair.primary_host) == ("hv-b1", "hv-a1")
    with pytest.raises(backup.BackupError, match="no replicated VM named nosuch"):
        backup.locate(fleet, "nosuch")


def test_window_pauses_on_the_primary_and_end_resumes(frozen: Lab, fleet: Fleet, redis_conn: redis.Redis) -> None:
    store = backup.window_store(redis_conn, SETTINGS)
    now = datetime.now(UTC)
    window = backup.start_window(fleet, store, VM, now, now + timedelta(hours=1), "U1", now)
    assert window.host == "hv-a1"
    assert backup.replication_status(fleet, "hv-a1", VM) == ("Suspended", "Warning")
    assert backup.check(fleet, VM).ready  # a primary-side pause does not block the Replica-VM backup (§1.8)
    ended = backup.end_window(fleet, store, VM, now + timedelta(minutes=5), SETTINGS)
    assert ended.window.status is WindowStatus.RESUMED
    assert ended.resumed.reading.state == "Replicating" and not ended.resumed.reset
    assert backup.replication_status(fleet, "hv-a1", VM) == ("Replicating", "Normal")


def test_housekeeping_resumes_an_overdue_window_once(frozen: Lab, fleet: Fleet, redis_conn: redis.Redis) -> None:
    store = backup.window_store(redis_conn, SETTINGS)
    now = datetime.now(UTC)
    backup.start_window(fleet, store, VM, now, now + timedelta(minutes=10), "U1", now)
    # the process that opened it is gone; a sweep before the end leaves it paused, one after resumes it
    assert backup.run_windows(redis_conn, now + timedelta(minutes=9), fleet, SETTINGS).startswith("resumed 0")
    assert backup.replication_status(fleet, "hv-a1", VM)[0] == "Suspended"
    assert backup.run_windows(redis_conn, now + timedelta(minutes=11), fleet, SETTINGS).startswith("resumed 1")
    assert backup.replication_status(fleet, "hv-a1", VM) == ("Replicating", "Normal")
    assert backup.run_windows(redis_conn, now + timedelta(minutes=12), fleet, SETTINGS) == \
        "resumed 0, failed 0, skipped 0"


def test_resume_failure_retried_then_alerted_once(frozen: Lab, fleet: Fleet, redis_conn: redis.Redis) -> None:
    store = backup.window_store(redis_conn, SETTINGS)
    now = datetime.now(UTC)
    backup.start_window(fleet, store, VM, now, now + timedelta(minutes=1), "U1", now)
    frozen.fleet.apply_control("fail_next", {"host": "hv-a1", "cmdlet": "Resume-VMReplication", "count": 3})
    alerts: list[tuple[str, str, int]] = []
    when = now + timedelta(minutes=2)
    for _ in range(3):  # each sweep at the window's next due time: fail, fail (alert), fail
        backup.run_windows(redis_conn, when, fleet, SETTINGS, lambda *a: alerts.append(a))
        when = store.get(VM).due_at  # type: ignore[union-attr]
    assert store.get(VM).failures == 3  # type: ignore[union-attr]
    assert len(alerts) == 1 and alerts[0][0] == VM and alerts[0][2] == 2
    assert "failed to resume replication" in alerts[0][1]
    assert backup.replication_status(fleet, "hv-a1", VM)[0] == "Suspended"
    assert backup.run_windows(redis_conn, when, fleet, SETTINGS).startswith("resumed 1")
    assert backup.replication_status(fleet, "hv-a1", VM) == ("Replicating", "Normal")


def test_a_long_window_resumes_warning_and_hvbot_resets_the_statistics(frozen: Lab, fleet: Fleet,
                                                                       redis_conn: redis.Redis) -> None:
    """After a 3 h pause the host still counts the missed cycles (hyperv.md §3.7): the resume is good (a new
    replication arrived), health is Warning, and Reset-VMReplicationStatistics turns it Normal (§1.9)."""
    store = backup.window_store(redis_conn, SETTINGS)
    now = datetime.now(UTC)
    backup.start_window(fleet, store, VM, now, now + timedelta(hours=3), "U1", now)
    frozen.fleet.apply_control("clock", {"advance_s": 3 * 3600})
    ended = backup.end_window(fleet, store, VM, now + timedelta(hours=3), SETTINGS)
    assert ended.resumed.reset and ended.resumed.reading.health == "Normal"
    assert "statistics reset" in ended.resumed.text()
    assert backup.replication_status(fleet, "hv-a1", VM) == ("Replicating", "Normal")


def test_without_the_reset_a_warning_after_resume_is_still_a_good_resume(frozen: Lab, fleet: Fleet,
                                                                         redis_conn: redis.Redis) -> None:
    settings = SETTINGS.model_copy(update={"reset_statistics_after_resume": False})
    store = backup.window_store(redis_conn, settings)
    now = datetime.now(UTC)
    backup.start_window(fleet, store, VM, now, now + timedelta(hours=3), "U1", now)
    frozen.fleet.apply_control("clock", {"advance_s": 3 * 3600})
    ended = backup.end_window(fleet, store, VM, now + timedelta(hours=3), settings)
    assert ended.window.status is WindowStatus.RESUMED and not ended.resumed.reset
    assert (ended.resumed.reading.state, ended.resumed.reading.health) == ("Replicating", "Warning")
    assert backup.replication_status(fleet, "hv-a1", VM) == ("Replicating", "Warning")


@pytest.mark.parametrize("side", ["primary", "replica"])
def test_a_window_on_a_vm_that_extends_replication_pauses_only_its_simple_relationship(
        frozen: Lab, fleet: Fleet, redis_conn: redis.Redis, side: str) -> None:
    """mail02 replicates hv-a2 -> hv-b2, and hv-b2 extends it to hv-b1: the window pauses and resumes the Simple
    relationship on the side chosen; the extended one keeps replicating (hyperv.md §1.8, §1.9)."""
    settings = SETTINGS.model_copy(update={"pause_side": side})
    store = backup.window_store(redis_conn, settings)
    now = datetime.now(UTC)
    window = backup.start_window(fleet, store, "mail02", now, now + timedelta(hours=1), "U1", now)
    assert window.host == {"primary": "hv-a2", "replica": "hv-b2"}[side]
    assert backup.replication_status(fleet, window.host, "mail02")[0] == "Suspended"
    extended = frozen.fleet.vm("hv-b2", "mail02").extended
    assert extended is not None and extended.state == "Replicating"
    ended = backup.end_window(fleet, store, "mail02", now + timedelta(minutes=5), settings)
    assert ended.window.status is WindowStatus.RESUMED
    assert backup.replication_status(fleet, window.host, "mail02")[0] == "Replicating"
    assert extended.state == "Replicating"
