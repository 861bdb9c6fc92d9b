"""Replica-VM backups against the fleet: read the §4 facts, check readiness, pause and resume replication.

Facts come from the replica host (Get-VMReplication, Measure-VMReplication, Get-VM sent as the statements of
one invocation) and from the primary host (Get-VMReplication), whose state is the only place "resynchronization
required" shows (hyperv.md §4 #5). Windows are recorded in `WindowStore` before replication is paused, so the
housekeeping chore (`housekeeping_chore`, run by `hvbot monitor` and at each worker start) resumes any window
past its end whatever happened to the process that opened it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from jobs.backup.alert import post_resume_alert
from jobs.backup.conditions import Readiness, ReplicaBackupFacts, evaluate
from jobs.backup.settings import BackupSettings
from jobs.backup.window import PauseSide, Window, WindowError, WindowStore
from jobs.hyperv import process_fleet
from jobs.hyperv.commands import EXTENDED, SIMPLE, single
from jobs.hyperv.errors import HyperVError
from jobs.hyperv.fleet import Fleet, HostCall
from jobs.hyperv.records import as_list, enum_name, parse_datetime, prop, type_name

log = logging.getLogger("hvbot.backup")

REPLICA_MODES = ("Replica", "ExtendedReplica")  # in preference order: the first replica, then an extended one


class BackupError(Exception):
    """One clear sentence; `transient` says whether trying later may help (exit code 75 vs 1)."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient


@dataclass(frozen=True)
class Pair:
    vm: str  # the name as Hyper-V spells it
    replica_host: str
    primary_host: str | None  # None: the primary is not in the inventory
    extended: bool = False  # an extended replica: its primary side is the Extended relationship of a replica

    def host_for(self, side: PauseSide) -> str:
        if side is PauseSide.REPLICA:
            return self.replica_host
        if self.primary_host is None:
            raise BackupError(f"the primary host of {self.vm} is not in the inventory, so it cannot be paused there")
        return self.primary_host


def locate(fleet: Fleet, vm: str) -> Pair:
    """Find the replica (and primary) host of `vm` from Get-VMReplication on every host."""

    def modes(call: HostCall) -> list[tuple[str, str, str]]:
        out = []
        for obj in call.run(single("Get-VMReplication", ReplicationRelationshipType=SIMPLE)):
            name = str(prop(obj, "VMName") or "")
            if name.lower() == vm.lower():
                out.append((name, enum_name(prop(obj, "ReplicationMode")) or "", str(prop(obj, "PrimaryServerName") or "")))
        return out

    found = fleet.fan_out(modes)
    for wanted in REPLICA_MODES:
        for host, rows in found.results.items():
            for name, mode, primary in rows:
                if mode == wanted:
                    return Pair(name, host, _inventory_host(fleet, primary), extended=mode == "ExtendedReplica")
    if any(rows for rows in found.results.values()):
        host = next(h for h, rows in found.results.items() if rows)
        raise BackupError(f"{vm} has no Replica VM in the inventory (only the primary on {host}); "
                          "run the check against a VM replicated to one of hvbot's hosts")
    if found.errors:
        down = ", ".join(sorted(found.errors))
        raise BackupError(f"{vm} was not found on the hosts that answered; {down} did not answer", transient=True)
    raise BackupError(f"no replicated VM named {vm} on any host")


def _inventory_host(fleet: Fleet, fqdn: str) -> str | None:
    try:
        return fleet.config(fqdn).name if fqdn else None
    except HyperVError:
        return None


def read_facts(fleet: Fleet, pair: Pair) -> ReplicaBackupFacts:
    """The §4 facts of the Replica VM (one round of exchanges on the replica host, one on the primary)."""
    pipes = [single("Get-VMReplication", VMName=[pair.vm], ReplicationRelationshipType=SIMPLE),
             single("Measure-VMReplication", VMName=[pair.vm], ReplicationRelationshipType=SIMPLE),
             single("Get-VM", Name=[pair.vm])]
    try:
        objects = fleet.session(pair.replica_host).run(pipes)
    except HyperVError as err:
        raise BackupError(f"the replica host {pair.replica_host} could not be read: {err.message}",
                          transient=err.kind in ("unreachable", "timeout")) from None
    by_type = {type_name(o): o for o in objects}
    rep, health, vm = by_type.get("VMReplication"), by_type.get("VMReplicationHealth"), by_type.get("VirtualMachine")
    if rep is None or health is None or vm is None:
        raise BackupError(f"{pair.replica_host} did not return the replication of {pair.vm}")
    return ReplicaBackupFacts(
        vm=pair.vm, mode=enum_name(prop(rep, "ReplicationMode")) or "None",
        state=enum_name(prop(rep, "ReplicationState")) or "Disabled",
        health=enum_name(prop(rep, "ReplicationHealth")) or "NotApplicable",
        last_replication_time=parse_datetime(prop(rep, "LastReplicationTime")),
        last_applied_log_time=parse_datetime(prop(rep, "LastAppliedLogTime")),
        operational_status=tuple(as_list(prop(vm, "OperationalStatus"))),
        test_vm_present=prop(rep, "TestVirtualMachine") is not None,
        current_tasks=tuple(as_list(prop(health, "CurrentTask"))),
        health_details=tuple(as_list(prop(health, "ReplicationHealthDetails"))),
        primary_state=_primary_state(fleet, pair),
    )


def _primary_state(fleet: Fleet, pair: Pair) -> str | None:
    if pair.primary_host is None:
        return None
    try:
        objects = fleet.session(pair.primary_host).run(
            single("Get-VMReplication", VMName=[pair.vm], ReplicationRelationshipType=EXTENDED if pair.extended
                   else SIMPLE))
    except HyperVError as err:
        log.warning("primary %s of %s unreadable: %s", pair.primary_host, pair.vm, err.message)
        return None
    return enum_name(prop(objects[0], "ReplicationState")) if objects else None


def check(fleet: Fleet, vm: str) -> Readiness:
    return evaluate(read_facts(fleet, locate(fleet, vm)))


@dataclass(frozen=True)
class Reading:
    """What the window's host reports of the VM's Simple relationship."""

    state: str
    health: str
    last_replication: datetime | None

    def text(self) -> str:
        return f"{self.state} / {self.health}"


def read_replication(fleet: Fleet, host: str, vm: str) -> Reading:
    objects = fleet.session(host).run(single("Get-VMReplication", VMName=[vm], ReplicationRelationshipType=SIMPLE))
    if not objects:
        raise BackupError(f"{host} reports no replication for {vm}")
    obj = objects[0]
    return Reading(enum_name(prop(obj, "ReplicationState")) or "", enum_name(prop(obj, "ReplicationHealth")) or "",
                   parse_datetime(prop(obj, "LastReplicationTime")))


def replication_status(fleet: Fleet, host: str, vm: str) -> tuple[str, str]:
    """(ReplicationState, ReplicationHealth) of `vm` as `host` reports it."""
    reading = read_replication(fleet, host, vm)
    return reading.state, reading.health


def start_window(fleet: Fleet, store: WindowStore, vm: str, start: datetime, end: datetime, user: str,
                 now: datetime) -> Window:
    """Record the window, then pause now (or at `start`, by whoever calls `pause_if_due` then)."""
    pair = locate(fleet, vm)
    side = store.config.pause_side
    window = store.open(pair.vm, pair.host_for(side), side, start, end, user)
    if start <= now:
        pause(fleet, store, window, now)
    return window


def pause(fleet: Fleet, store: WindowStore, window: Window, now: datetime) -> None:
    """Suspend-VMReplication on the window's host, under the window's lease (never interleaved with resume)."""
    with store.lease(window.vm) as held:
        if not held:
            raise BackupError(f"{window.vm}: another process is working on its backup window", transient=True)
        try:
            fleet.session(window.host).run(single("Suspend-VMReplication", VMName=[window.vm],
                                                  ReplicationRelationshipType=SIMPLE))
        except HyperVError as err:
            store.mark_resumed(window.vm, now)  # nothing is paused: the window must not be resumed later
            raise BackupError(f"could not pause replication of {window.vm} on {window.host}: {err.message}",
                              transient=err.kind in ("unreachable", "timeout")) from None


Clock = Callable[[], float]


@dataclass(frozen=True)
class Resumed:
    """A verified resume: replication runs again (``reading``); ``reset`` when hvbot reset the statistics."""

    reading: Reading
    reset: bool = False

    def text(self) -> str:
        when = self.reading.last_replication
        sent = f"last replication {when.astimezone(UTC):%H:%M:%S} UTC" if when else "replicating"
        cleared = "; statistics reset to clear the pause's missed-cycles Warning" if self.reset else ""
        return f"{self.reading.text()}, {sent}{cleared}"


def replicating_again(now: Reading, before: Reading, resumed: bool) -> bool:
    """Replicating, not Critical, and (after our resume) a replication newer than before it. Health right after a
    resume may stay Warning: the host judges it over the monitoring interval, which still holds the pause's
    missed cycles (hyperv.md §3.7)."""
    if now.state != "Replicating" or now.health == "Critical":
        return False
    if not resumed or before.last_replication is None:
        return True
    return now.last_replication is not None and now.last_replication > before.last_replication


def resume_and_verify(fleet: Fleet, window: Window, settings: BackupSettings,
                      clock: Clock = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> Resumed:
    """Resume (unless it already runs), wait until a replication newer than the pause arrives, then reset the
    statistics when only the pause's missed cycles keep health at Warning (hyperv.md §1.9); raises otherwise."""
    session = fleet.session(window.host)
    before = read_replication(fleet, window.host, window.vm)
    resumed = before.state != "Replicating"
    if resumed:
        session.run(single("Resume-VMReplication", VMName=[window.vm], ReplicationRelationshipType=SIMPLE))
    deadline = clock() + settings.resume_verify_s
    while not replicating_again(now := read_replication(fleet, window.host, window.vm), before, resumed):
        if clock() >= deadline:
            raise BackupError(f"{window.vm} on {window.host} is {now.text()} {settings.resume_verify_s:g} s after "
                              "resume, with no new replication since the pause")
        sleep(settings.resume_poll_s)
    if now.health != "Warning" or not settings.reset_statistics_after_resume:
        return Resumed(now)
    session.run(single("Reset-VMReplicationStatistics", VMName=[window.vm], ReplicationRelationshipType=SIMPLE))
    return Resumed(read_replication(fleet, window.host, window.vm), reset=True)


@dataclass(frozen=True)
class Ended:
    window: Window
    resumed: Resumed


def end_window(fleet: Fleet, store: WindowStore, vm: str, now: datetime, settings: BackupSettings) -> Ended:
    """End the window now and resume it; failures are recorded and retried by housekeeping."""
    window = store.close(vm, now)
    if window is None:
        raise BackupError(f"{vm} has no open backup window")
    outcome: list[Resumed] = []
    report = store.resume(window.vm, now, lambda w: outcome.append(resume_and_verify(fleet, w, settings)))
    if report.failed:
        failure = report.failed[0]
        raise BackupError(f"resume of {vm} failed ({failure.error}); retried at {failure.next_attempt_at:%H:%M:%S}",
                          transient=True)
    if report.skipped:
        raise BackupError(f"{vm}: another process is resuming it right now", transient=True)
    return Ended(store.get(window.vm) or window, outcome[0])


def window_store(connection: redis.Redis, settings: BackupSettings | None = None) -> WindowStore:
    return WindowStore(connection, config=(settings or BackupSettings()).window_config())


AlertFn = Callable[[str, str, int], Any]  # (vm, error, failures)


def run_windows(connection: redis.Redis, now: datetime, fleet: Fleet, settings: BackupSettings,
                alert: AlertFn | None = None) -> str:
    """Resume every overdue window once; alert once per window after repeated failures."""
    store = window_store(connection, settings)
    report = store.housekeeping(now, lambda w: resume_and_verify(fleet, w, settings))
    for failure in report.failed:
        if failure.needs_alert and alert is not None:
            alert(failure.vm, failure.error, failure.failures)
    return f"resumed {len(report.resumed)}, failed {len(report.failed)}, skipped {len(report.skipped)}"


def housekeeping_chore(connection: redis.Redis, now: datetime) -> str:
    """The `backup-windows` chore of jobs.housekeeping (fleet from HVBOT_INVENTORY)."""
    settings = BackupSettings()
    store = window_store(connection, settings)
    if not store.due_for_resume(now):
        return "nothing due"  # no fleet sessions opened when there is nothing to do
    return run_windows(connection, now, process_fleet.fleet(), settings,
                       lambda vm, error, failures: post_resume_alert(connection, settings, vm, error, failures))


__all__ = ["BackupError", "Ended", "Pair", "Resumed", "WindowError", "check", "end_window", "housekeeping_chore",
           "locate", "pause", "read_facts", "read_replication", "resume_and_verify", "run_windows", "start_window"]
