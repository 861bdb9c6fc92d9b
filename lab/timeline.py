"""Time-driven replica behaviour on the fleet clock: log-apply cycles and resynchronization.

Nothing here sleeps or reads the wall clock: ``tick(fleet, host)`` brings the model up to ``fleet.clock()``
and is called before every pipeline and every control action, so a test that swaps the clock
(``lab.clock.ManualClock``) sees exactly the same states every run.

Log apply (hyperv.md §4 condition 1): on a Replica VM in state Replicating with cycles enabled, a log
arrives every ``ReplicationFrequencySec`` from the anchor (``LastReplicationTime`` moves to the arrival
time) and applying it takes ``apply_sec``; during that window ``LastAppliedLogTime`` is still the previous
arrival (older than ``LastReplicationTime``) and Measure-VMReplication's ``CurrentTask`` lists the apply.
The task's text is UNCONFIRMED (no reference gives the ToString of VMCurrentTask or the apply task's name).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from lab import health
from lab.model import VM, Fleet, Host, LogApply, Replication

# CurrentTask is IList<VMCurrentTask> (hyperv.md §2.4): nested, so at serialization depth 1 each task arrives as
# its ToString() (§5.2). No reference gives that text or the apply task's name (§8 item 3); the lab sends the
# type name, which is what an object without its own ToString gives, so the bot can rely on no name or percent.
APPLY_TASK = "Microsoft.HyperV.PowerShell.VMCurrentTask"
RESYNC_DETAIL = "Resynchronization is in progress for virtual machine '{0}'."  # UNCONFIRMED wording


def tick(fleet: Fleet, host: Host | None = None) -> None:
    """Advance every time-driven process of ``host`` (or of every host) to ``fleet.clock()``."""
    now = fleet.clock()
    for h in [host] if host is not None else list(fleet.hosts.values()):
        for vm in h.vms:
            rep = vm.replication
            if rep is None:
                continue
            if rep.resync_done_at is not None and now >= rep.resync_done_at:
                finish_resync(fleet, h, vm, rep.resync_done_at)
            if rep.log_apply is not None:
                _apply_cycle(fleet, h, vm, now)
            for side in (rep, vm.extended):
                if side is not None:
                    health.advance(side, vm.name, now, h.monitoring_interval)


def apply_view(rep: Replication, now: datetime) -> tuple[datetime, datetime | None, int | None]:
    """(last received, last applied, percent of the running apply or None) for enabled cycles at ``now``."""
    cyc = rep.log_apply
    assert cyc is not None
    freq = timedelta(seconds=rep.frequency_sec)
    k = max(0, int((now - cyc.anchor) / freq))
    received = cyc.anchor + k * freq
    elapsed = (now - received).total_seconds()
    if elapsed < cyc.apply_sec:
        applied = received - freq if k else cyc.applied_before
        return received, applied, int(elapsed * 100 / cyc.apply_sec)
    return received, received, None


def _apply_cycle(fleet: Fleet, host: Host, vm: VM, now: datetime) -> None:
    rep = vm.replication
    assert rep is not None and rep.log_apply is not None
    if rep.mode != "Replica" or rep.state != "Replicating" or now < rep.log_apply.anchor:
        finish_apply(rep)
        return
    received, applied, percent = apply_view(rep, now)
    rep.last_replication_time, rep.last_applied_log_time = received, applied
    rep.current_tasks = [] if percent is None else [APPLY_TASK]
    partner = fleet.partner(host, vm)
    if partner is not None and partner[1].replication is not None and partner[1].replication.state == "Replicating":
        partner[1].replication.last_replication_time = received  # the primary sent it


def enable_log_apply(rep: Replication, now: datetime, apply_sec: float) -> None:
    if apply_sec <= 0 or apply_sec >= rep.frequency_sec:
        raise ValueError(f"apply_seconds must be > 0 and shorter than the replication frequency "
                         f"({rep.frequency_sec} s)")
    rep.log_apply = LogApply(anchor=now, apply_sec=apply_sec, applied_before=rep.last_applied_log_time)


def finish_apply(rep: Replication) -> None:
    """Replication stops (suspend, failover...): the apply in progress completes (lab choice, UNCONFIRMED)."""
    if rep.log_apply is not None and rep.last_replication_time is not None:
        rep.last_applied_log_time = rep.last_replication_time
    rep.current_tasks = []


def restart_cycles(rep: Replication, now: datetime, applied_before: datetime | None) -> None:
    """Replication (re)starts at ``now``: a log arrives now and its apply window begins."""
    rep.last_replication_time = rep.last_applied_log_time = now
    if rep.log_apply is not None:
        rep.log_apply = LogApply(anchor=now, apply_sec=rep.log_apply.apply_sec, applied_before=applied_before)
        rep.last_applied_log_time = applied_before


# --- resynchronization (hyperv.md §1.8, §7 "Resync side effects") ------------------------------------


def _sides(fleet: Fleet, host: Host, vm: VM) -> list[Replication]:
    assert vm.replication is not None
    sides = [vm.replication]
    partner = fleet.partner(host, vm)
    if partner is not None and partner[1].replication is not None:
        sides.append(partner[1].replication)
    return sides


def start_resync(fleet: Fleet, host: Host, vm: VM, now: datetime) -> None:
    """Both sides Resynchronizing until ``resync_seconds`` (of the side it was started on) have passed."""
    assert vm.replication is not None
    seconds = vm.replication.resync_seconds
    for rep in _sides(fleet, host, vm):
        finish_apply(rep)
        rep.resync_seconds = seconds
    continue_resync(fleet, host, vm, now)


def continue_resync(fleet: Fleet, host: Host, vm: VM, now: datetime) -> None:
    """Resume of a paused resync: both sides Resynchronizing again for the time that was left."""
    for rep in _sides(fleet, host, vm):
        rep.state, rep.health = "Resynchronizing", "Warning"
        rep.health_details = [RESYNC_DETAIL.format(vm.name)]
        rep.resync_done_at = now + timedelta(seconds=rep.resync_seconds)


def suspend_resync(fleet: Fleet, host: Host, vm: VM, now: datetime) -> None:
    """Pausing stops the resync; resuming continues it where it stopped [BLOG-RESYNC]."""
    for rep in _sides(fleet, host, vm):
        if rep.resync_done_at is not None:
            rep.resync_seconds = max(0.0, (rep.resync_done_at - now).total_seconds())
        rep.resync_done_at = None
        rep.state = "ResynchronizeSuspended"


def finish_resync(fleet: Fleet, host: Host, vm: VM, when: datetime) -> None:
    for rep in _sides(fleet, host, vm):
        rep.state, rep.health, rep.health_details = "Replicating", "Normal", []
        rep.resync_done_at = None
        restart_cycles(rep, when, rep.last_applied_log_time)
