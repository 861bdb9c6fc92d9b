"""Replication statistics and health over the monitoring interval (hyperv.md §1.9, §3.7, §7).

A host collects statistics per relationship over its monitoring interval (default 12 h, ``Host.monitoring_interval``)
and judges health from them: more than 20 % of the interval's replication cycles missed is a Warning [BLOG-H1],
so after a long pause a resumed relationship replicates again but stays Warning until enough good cycles have
passed, the interval rolls over, or ``Reset-VMReplicationStatistics`` clears it (a Warning becomes Normal [CMD]).

Cycles are counted on the fleet clock at ``ReplicationFrequencySec`` boundaries from the interval's start: one is
successful while the relationship is Replicating and missed while it is paused or in error. Nothing here reads
the wall clock; ``lab.timeline.tick`` calls ``advance`` before every pipeline.

The lab applies only the missed-cycles rule. The other WS2012 Warning triggers are either transitions the state
machine sets itself (paused on the primary, failover awaiting reverse replication) or not simulated: "more than
1 hour since the last replication" needs replication times that advance, which the lab has only for replicas
with log-apply cycles, so it is left to hvbot's own lag rule (stated in lab/README.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from lab.model import Replication

MISSED_RATIO_WARNING = 0.20  # §3.7: "> 20% of replication cycles missed in the monitoring interval"
# Cycles that should have run but did not: the relationship is paused or broken (§1.8, §3.7).
MISSING_STATES = frozenset({"Suspended", "Error", "UpdateError", "ResynchronizeSuspended",
                            "WaitingForStartResynchronize"})
# Wording UNCONFIRMED: hyperv.md §2.4 paraphrases the message ("more than 20 percent of replication cycles were
# missed").
MISSED_DETAIL = ("More than 20 percent of replication cycles have been missed during the monitoring interval for "
                 "virtual machine '{0}'.")


def _cycle_index(rep: Replication, when: datetime) -> int:
    assert rep.monitoring_start is not None
    return int((when - rep.monitoring_start) / timedelta(seconds=rep.frequency_sec))


def _roll_interval(rep: Replication, now: datetime, interval: timedelta) -> None:
    """A new monitoring interval starts with empty statistics."""
    assert rep.monitoring_start is not None
    if now < rep.monitoring_start + interval:
        return
    intervals = int((now - rep.monitoring_start) / interval)
    rep.monitoring_start += intervals * interval
    rep.successful_count = rep.missed_count = 0
    if rep.counted_until is None or rep.counted_until < rep.monitoring_start:
        rep.counted_until = rep.monitoring_start


def missed_ratio(rep: Replication) -> float:
    total = rep.successful_count + rep.missed_count
    return rep.missed_count / total if total else 0.0


def advance(rep: Replication, vm_name: str, now: datetime, interval: timedelta) -> None:
    """Count the cycles since the last call into the statistics, then judge health from them."""
    if rep.monitoring_start is None:
        return
    _roll_interval(rep, now, interval)
    since = rep.counted_until or now
    if now > since:
        cycles = _cycle_index(rep, now) - _cycle_index(rep, since)
        if rep.state == "Replicating":
            rep.successful_count += cycles
        elif rep.state in MISSING_STATES:
            rep.missed_count += cycles
    rep.counted_until = now
    _judge(rep, vm_name)


def _judge(rep: Replication, vm_name: str) -> None:
    """Warning while too many cycles were missed; back to Normal once the statistics recover. Only the Warning
    the statistics set (recognised by its detail) is cleared again: one a transition set stays until its cause
    ends."""
    if rep.state != "Replicating":
        return
    too_many = missed_ratio(rep) > MISSED_RATIO_WARNING
    detail = [MISSED_DETAIL.format(vm_name)]
    if too_many and rep.health == "Normal":
        rep.health, rep.health_details = "Warning", detail
    elif not too_many and rep.health == "Warning" and rep.health_details == detail:
        rep.health, rep.health_details = "Normal", []


def reset(rep: Replication, now: datetime) -> None:
    """Reset-VMReplicationStatistics: collection restarts now; a Warning becomes Normal [CMD]."""
    rep.monitoring_start = rep.counted_until = now
    rep.successful_count = rep.missed_count = rep.errors = 0
    if rep.health == "Warning":
        rep.health, rep.health_details = "Normal", []
