"""The drill report as data and as Block Kit: within Slack's limits for a 200-VM plan, every VM in the file."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.views import drills as views
from bot.views.common import MAX_BLOCKS, SECTION_CHARS
from jobs.recovery import drill_report


def _row(i: int, result: str = "passed") -> dict:
    return {"vm": f"vm{i:03d}", "primary_host": "hv-a1", "replica_host": "hv-b1", "result": result,
            "recovery_point": f"vm{i:03d} - (12/06/2026 - 03:00:00 AM)", "point_created": "2026-12-06T03:00:00+00:00",
            "point_age_s": 90.0, "test_vm_created": "2026-12-06T03:01:30+00:00",
            "time_to_heartbeat_s": 30.0 + i % 7 if result == "passed" else None,
            "recovery_s": 40.0 + i if result == "passed" else None, "heartbeat": "OkApplicationsHealthy",
            "cleaned": result != "cleanup_failed", "problems": [] if result == "passed" else ["x" * 300],
            "notes": []}


def test_a_200_vm_report_fits_slack_and_the_file_holds_every_vm() -> None:
    rows = [_row(i, "passed" if i % 50 else "failed") for i in range(200)]
    report = drill_report.build("d1", "big", "big", "scheduled", "schedule", datetime.now(UTC),
                                {"ok": False, "vms": rows})
    view = views.report(report)
    blocks = view.block_dicts()  # validates every block
    assert len(blocks) <= MAX_BLOCKS
    assert all(len(b["text"]["text"]) <= SECTION_CHARS for b in blocks if b["type"] == "section")
    assert "160 more VMs in the file" in json.dumps(blocks)
    assert report["counts"] == {"passed": 196, "failed": 4, "refused": 0, "cleanup_failed": 0}
    assert report["measured_recovery_s"] is None  # not every VM recovered: no overall recovery time
    assert len(json.loads(drill_report.as_file(report))["vms"]) == 200
    assert drill_report.summary_lines(report)[0] == "Drill of plan big: FAILED"


def test_a_passed_drill_states_its_recovery_time_and_a_left_test_vm_is_loud() -> None:
    ok = drill_report.build("d2", "p", "p", "manual", "U1", datetime.now(UTC), {"ok": True, "vms": [_row(1)]})
    assert ok["ok"] and ok["measured_recovery_s"] == 41.0 and ok["slowest_heartbeat_s"] == 31.0
    assert "measured recovery time 41 s" in views.report(ok).text
    left = drill_report.build("d3", "vm1", "", "manual", "U1", datetime.now(UTC),
                              {"ok": False, "vms": [_row(1, "cleanup_failed")]})
    assert left["left_behind"] == ["vm001"] and "test VMs LEFT BEHIND: vm001" in views.report(left).text
