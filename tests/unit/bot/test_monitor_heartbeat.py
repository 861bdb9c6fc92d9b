"""The monitor's heartbeat as users read it, the loop's backoff, and the Suspended-without-window alert that offers
Resume under the rules `hvbot monitor` runs with."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.delivery.alert_routing import alert_rules
from bot.settings import Settings
from bot.views import alerts as alert_views
from jobs.monitor.heartbeat import Heartbeat
from jobs.monitor.loop import backoff_s
from jobs.monitor.notifications import Notification, NotificationKind
from jobs.monitor.rules import Condition, ReplicaObservation, Severity, evaluate

BEAT = Heartbeat(at=1000.0, swept_at=1000.0, interval_s=60, tick_s=5, holder="box pid 7", hosts=4)


def test_a_recent_sweep_is_fresh_and_says_how_long_ago() -> None:
    assert BEAT.fresh(1040.0)
    assert BEAT.describe(1040.0) == "monitor last swept 40 s ago (4 hosts, box pid 7)"


def test_a_silent_monitor_is_stale_after_two_intervals_and_says_for_how_long() -> None:
    assert BEAT.fresh(1000.0 + BEAT.stale_after_s)
    assert not BEAT.fresh(1000.0 + BEAT.stale_after_s + 1)
    text = BEAT.describe(1600.0)
    assert text.startswith("monitor has not swept for 10 min") and "hvbot monitor" in text


def test_backoff_doubles_from_the_tick_up_to_its_cap() -> None:
    assert [backoff_s(n, 0.5, 4.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert backoff_s(10_000, 5.0, 30.0) == 30.0


def test_suspended_with_no_known_window_alerts_critical_with_a_resume_action() -> None:
    """After Redis lost the backup windows, a paused VM has no window: the normal rules alert on it."""
    now = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
    rules = alert_rules(Settings())
    obs = ReplicaObservation(host="hv-a1", site="site-a", vm="web01", mode="Primary", state="Suspended",
                             health="Warning", frequency_sec=300, last_replication_time=now)
    findings = [f for f in evaluate([obs], [], now, rules) if f.row.condition == Condition.STATE]
    assert len(findings) == 1 and findings[0].severity is Severity.CRITICAL and findings[0].muted_reason is None
    note = Notification(kind=NotificationKind.POST_GROUP, group_key="g", channel="#hv-oncall", severity="critical",
                        title="replication_state", conditions=["replication_state"], mention=None,
                        rows=[findings[0].row], vm_count=1, host_count=1)
    blocks = alert_views.alert(note).block_dicts()
    row = next(b for b in blocks if b.get("accessory") and "web01" in b["text"]["text"])
    assert "Resume" in [o["text"]["text"] for o in row["accessory"]["options"]]
    in_window = ReplicaObservation(**{**obs.__dict__, "in_backup_window": True})
    assert all(f.muted_reason for f in evaluate([in_window], [], now, rules))
