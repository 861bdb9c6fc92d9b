"""Alert conditions from one sweep's observations (pure)."""

from datetime import UTC, datetime, timedelta

from jobs.monitor.rules import (
    AlertRules,
    Condition,
    HostObservation,
    ReplicaObservation,
    Severity,
    evaluate,
    fingerprint,
    route,
)
from jobs.monitor.muting import Mutes, inhibiting_hosts
from jobs.monitor.records import entry

NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)


def obs(**kw) -> ReplicaObservation:
    base = dict(
        host="hv-a1", site="site-a", vm="vm1", mode="Primary", state="Replicating", health="Normal",
        frequency_sec=300, last_replication_time=NOW - timedelta(seconds=60),
        successful_count=100, missed_count=0,
    )
    base.update(kw)
    return ReplicaObservation(**base)


def conditions(findings) -> set[str]:
    return {f.row.condition for f in findings}


def test_healthy_vm_has_no_findings():
    assert evaluate([obs()], [], NOW, AlertRules()) == []


def test_critical_fires_at_once_and_warning_needs_n_sweeps():
    rules = AlertRules(warning_sweeps=4)
    crit = evaluate([obs(health="Critical")], [], NOW, rules)
    warn = evaluate([obs(health="Warning")], [], NOW, rules)
    assert [(f.row.condition, f.severity, f.for_sweeps) for f in crit] == [
        ("health_critical", Severity.CRITICAL, 1)
    ]
    assert [(f.row.condition, f.for_sweeps) for f in warn] == [("health_warning", 4)]


def test_bad_states_and_suspended_only_outside_backup_window():
    for state in ("Error", "WaitingForStartResynchronize", "ResynchronizeSuspended", "Suspended"):
        assert conditions(evaluate([obs(state=state)], [], NOW, AlertRules())) == {"replication_state"}
    in_window = evaluate([obs(state="Suspended", in_backup_window=True)], [], NOW, AlertRules())
    assert in_window == []
    assert evaluate([obs(state="Resynchronizing")], [], NOW, AlertRules()) == []


def test_lag_is_a_multiple_of_frequency_capped_at_one_hour():
    rules = AlertRules(lag_frequency_multiple=4)
    # 30 s frequency: threshold 120 s
    assert evaluate([obs(frequency_sec=30, last_replication_time=NOW - timedelta(seconds=119))], [], NOW, rules) == []
    lagging = evaluate([obs(frequency_sec=30, last_replication_time=NOW - timedelta(seconds=121))], [], NOW, rules)
    assert conditions(lagging) == {"replication_lag"} and lagging[0].row.lag_s == 121
    # 900 s frequency: 4 x 900 = 3600 would be the cap anyway; 12 x 900 is capped to 3600
    capped = AlertRules(lag_frequency_multiple=12)
    late = obs(frequency_sec=900, last_replication_time=NOW - timedelta(seconds=3601))
    assert conditions(evaluate([late], [], NOW, capped)) == {"replication_lag"}


def test_missed_cycle_ratio_above_twenty_percent():
    assert evaluate([obs(successful_count=80, missed_count=20)], [], NOW, AlertRules()) == []
    found = evaluate([obs(successful_count=79, missed_count=21)], [], NOW, AlertRules())
    assert conditions(found) == {"missed_cycles"}
    assert evaluate([obs(successful_count=0, missed_count=0)], [], NOW, AlertRules()) == []


def test_host_unreachable_inhibits_its_vms_and_their_replicas():
    hosts = [HostObservation("hv-a1", "site-a", reachable=False, error="connection refused")]
    own = obs(health="Critical")
    replica_side = obs(host="hv-b1", site="site-b", mode="Replica", health="Critical", partner_host="HV-A1.lab.local")
    unrelated = obs(host="hv-b2", site="site-b", vm="vm9", health="Critical", partner_host="hv-a2.lab.local")
    found = evaluate([own, replica_side, unrelated], hosts, NOW, AlertRules())
    assert all(f.muted_reason is None for f in found)  # findings are not inhibited; messages are
    entries = [entry({"row": f.row.to_dict(), "group": "g", "partner": f.partner, "base_muted": None}) for f in found]
    mutes = Mutes(down=frozenset(inhibiting_hosts(entries)))
    shown = sorted((row["condition"], row["host"]) for row in mutes.visible(entries))
    assert shown == [("health_critical", "hv-b2"), ("host_unreachable", "hv-a1")]
    assert all("inhibited" in (mutes.reason(e) or "") for e in entries if e["row"] not in mutes.visible(entries))
    assert Mutes().visible(entries) == [e["row"] for e in entries]  # once the host-down alert ends


def test_silence_mutes_by_vm_host_and_group_and_changes_the_key():
    [found] = evaluate([obs(health="Critical")], [], NOW, AlertRules())
    e = entry({"row": found.row.to_dict(), "group": "health_critical:site-a", "partner": "", "base_muted": None})
    for kind, target in (("vm", "vm1"), ("host", "hv-a1"), ("group", "health_critical:site-a")):
        silences = {"s1": {"kind": kind, "target": target, "by": "U1", "reason": "silenced"}}
        assert Mutes(silences=silences).reason(e) == "silenced by U1"
        assert Mutes(silences=silences).key != Mutes().key
    assert Mutes(silences={"s1": {"kind": "vm", "target": "vm2", "by": "U1", "reason": "x"}}).reason(e) is None


def test_backup_window_and_failover_mute_vm_findings():
    found = evaluate([obs(health="Critical", under_failover=True), obs(vm="vm2", health="Critical", in_backup_window=True)],
                     [], NOW, AlertRules())
    assert [f.muted_reason for f in found] == ["suppressed: failover running", "suppressed: backup window"]


def test_disabled_condition_and_mode_filter():
    rules = AlertRules(enabled={Condition.HEALTH_CRITICAL})
    assert conditions(evaluate([obs(health="Critical", state="Error")], [], NOW, rules)) == {"health_critical"}
    assert evaluate([obs(mode="TestReplica", health="Critical")], [], NOW, AlertRules()) == []


def test_fingerprint_is_per_host_vm_condition_and_routing_by_severity():
    assert fingerprint("hv-a1", "vm1", "health_critical") == fingerprint("HV-A1", "VM1", "health_critical")
    assert fingerprint("hv-a1", "vm1", "health_critical") != fingerprint("hv-a1", "vm1", "replication_lag")
    rules = AlertRules.model_validate({"routing": {"critical_channel": "#oncall", "warning_channel": "#ops",
                                                   "oncall_mention": "<!subteam^S1>"}})
    assert route(Severity.CRITICAL, rules) == ("#oncall", "<!subteam^S1>")
    assert route(Severity.WARNING, rules) == ("#ops", None)


def test_grouping_scope_follows_rule():
    site = evaluate([obs(health="Critical")], [], NOW, AlertRules())[0]
    host = evaluate([obs(health="Critical")], [], NOW, AlertRules(group_by="host"))[0]
    assert (site.group_scope, host.group_scope) == ("site-a", "hv-a1")


def test_severity_override_keeps_the_other_defaults():
    rules = AlertRules.model_validate({"severity": {"replication_lag": "critical"}})
    assert rules.severity[Condition.LAG] == Severity.CRITICAL
    assert rules.severity[Condition.HEALTH_WARNING] == Severity.WARNING
