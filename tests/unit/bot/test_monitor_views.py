"""Alert messages within Slack's limits, the CSV names every row, durations and the last-sweep answer."""

from __future__ import annotations

import csv
import io
import json

import pytest

from bot.delivery.alert_routing import alert_rules
from bot.grammar import MAX_SILENCE, parse_duration
from bot.listeners.monitor import replication_text
from bot.settings import Settings
from bot.views import alerts as alert_views
from bot.views.tokens import plain, unseal
from jobs.monitor.notifications import Notification, NotificationKind
from jobs.monitor.rules import AlertRow


def _row(i: int) -> AlertRow:
    return AlertRow(fingerprint=f"f{i}", condition="health_critical", host=f"hv-{i % 50:03d}", site="site-a",
                    vm=f"vm-with-a-rather-long-name-{i:04d}", state="Error", health="Critical",
                    last_replication="2026-09-01T11:00:00+00:00", lag_s=3600 + i, detail="health Critical")


def _note(kind: NotificationKind, rows: list[AlertRow], total: list[AlertRow] | None = None) -> Notification:
    return Notification(kind=kind, group_key="m-1", channel="#oncall", severity="critical", title="storm",
                        conditions=["health_critical"], mention="<!subteam^S1>", rows=rows, vm_count=len(total or rows),
                        host_count=50, attachment_rows=total, muted_count=3)


def _text_chars(node: object) -> int:
    if isinstance(node, dict):
        return sum(len(v) if k == "text" and isinstance(v, str) else _text_chars(v) for k, v in node.items())
    if isinstance(node, list):
        return sum(_text_chars(v) for v in node)
    return 0


def test_a_full_alert_fits_slack_limits_and_offers_every_action() -> None:
    rows = [_row(i) for i in range(500)]
    inline = alert_rules(Settings()).max_inline_rows
    view = alert_views.alert(_note(NotificationKind.POST_GROUP, rows[:inline], rows))
    blocks = view.block_dicts()
    assert len(blocks) <= 50
    assert _text_chars(blocks) < 11_000  # bot.views.common.MESSAGE_CHARS: under Slack's ~13k msg_blocks_too_long
    assert view.text.startswith("<!subteam^S1>")
    menus = [b["accessory"] for b in blocks if b.get("accessory")]
    assert len(menus) == inline
    values = [o["value"] for o in menus[0]["options"]]
    assert [plain(v).split("|")[0] for v in values] == ["details", "resume", "resync", "failover"]
    assert [unseal(v) is not None for v in values] == [False, True, True, False]  # one-use: what changes something
    assert "confirm" in menus[0]
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert [e["action_id"] for e in buttons] == [alert_views.ACTION_ACK, f"{alert_views.ACTION_SNOOZE}_3600",
                                                 f"{alert_views.ACTION_SNOOZE}_14400"]
    assert [plain(e["value"]) for e in buttons] == ["m-1", "3600|m-1", "14400|m-1"]
    assert all(unseal(e["value"]) is not None for e in buttons)
    assert f"showing {inline} of 500" in json.dumps(blocks) and "3 more muted" in json.dumps(blocks)
    assert "Error: replication is not happening" in json.dumps(blocks)  # the legend of the rows' state


def test_csv_names_every_row() -> None:
    rows = [_row(i) for i in range(500)]
    parsed = list(csv.DictReader(io.StringIO(alert_views.csv_text(rows))))
    assert [p["vm"] for p in parsed] == [r.vm for r in rows]
    assert parsed[0]["lag_s"] == "3600" and parsed[0]["host"] == "hv-000"


def test_host_rows_have_no_vm_menu_and_resolve_names_the_vms() -> None:
    host = AlertRow(fingerprint="h", condition="host_unreachable", host="hv-a1", site="site-a", vm="",
                    detail="hv-a1: cannot connect")
    blocks = alert_views.alert(_note(NotificationKind.POST_GROUP, [host])).block_dicts()
    assert not [b for b in blocks if b.get("accessory")]
    reply = alert_views.resolve_reply(_note(NotificationKind.RESOLVE, [_row(1), _row(2)]))
    assert "vm-with-a-rather-long-name-0001" in reply.text + json.dumps(reply.block_dicts())


def test_silence_durations() -> None:
    def seconds(text: str) -> float:
        return parse_duration(text, MAX_SILENCE, "a silence").total_seconds()

    assert seconds("30m") == 1800 and seconds("2H") == 7200 and seconds("7d") == 7 * 86400
    for bad, reason in (("8d", "a silence lasts at most 7 days"), ("0h", "no time at all"), ("soon", "not a duration")):
        with pytest.raises(ValueError, match=reason):
            seconds(bad)


def test_replication_text_filters_and_says_its_age() -> None:
    vm = {"vm": "web-01", "mode": "Primary", "state": "Replicating", "health": "Normal", "lag_s": 30,
          "in_backup_window": True, "under_failover": False}
    entries = [{"host": "hv-a1", "at": 1000.0, "error": "", "vms": [vm]},
               {"host": "hv-b1", "at": 1010.0, "error": "hv-b1: cannot connect", "vms": []}]
    text = replication_text(entries, "web-*", now=1100.0)
    assert "(1 min 40 s ago)" in text and "`web-01` on hv-a1" in text and "backup window" in text
    assert "hv-b1" not in text
    assert ":x: hv-b1: cannot connect" in replication_text(entries, "hv-b1", now=1100.0)
    assert "Nothing named `db-*`" in replication_text(entries, "db-*", now=1100.0)
