"""Report -> Block Kit: validated blocks, paging within Slack's limits, per-host error lines, full CSV."""

from __future__ import annotations

import csv
import io

from bot.views import common as views


def _report(rows: int, errors: int = 0) -> dict:
    return {
        "kind": "ips",
        "columns": ["host", "vm", "ip"],
        "rows": [{"host": f"hv-{i % 3}", "vm": f"vm{i:04d}", "ip": [f"10.0.{i // 250}.{i % 250}"]} for i in range(rows)],
        "errors": [{"host": f"hv-x{i}", "kind": "unreachable", "message": "no answer within 10 s"} for i in range(errors)],
        "hosts_ok": ["hv-0", "hv-1", "hv-2"],
    }


def test_small_result_one_page_no_buttons() -> None:
    view = views.result("ips", "job1", _report(3))
    blocks = view.block_dicts()
    assert not any(b["type"] == "actions" for b in blocks)
    assert "vm0002" in str(blocks) and "3 hosts answered" in view.text


def test_large_result_pages_every_row_reachable() -> None:
    report = _report(1000, errors=40)
    pages = views.page_count(report, 20)
    seen = set()
    for page in range(pages):
        view = views.result("ips", "job1", report, page, 20)
        blocks = view.block_dicts()
        assert len(blocks) <= views.MAX_BLOCKS
        assert sum(len(str(b)) for b in blocks) < 13_000
        seen.update(r["vm"] for r in report["rows"] if r["vm"] + " " in str(blocks))
        actions = [b for b in blocks if b["type"] == "actions"]
        assert actions and any(e["action_id"] == views.ACTION_CSV for e in actions[0]["elements"])
    assert len(seen) == 1000
    assert "and 25 more host errors" in str(views.result("ips", "job1", report).block_dicts())


def test_error_lines_one_per_host_with_rows_still_shown() -> None:
    view = views.result("ips", "j", _report(2, errors=2))
    text = str(view.block_dicts())
    assert "hv-x0" in text and "hv-x1" in text and "vm0001" in text


def test_csv_is_complete_and_formula_safe() -> None:
    report = _report(5, errors=1)
    report["rows"][0]["vm"] = "=cmd|'/c calc'!A1"
    rows = list(csv.reader(io.StringIO(views.report_csv(report))))
    assert rows[0] == ["host", "vm", "ip"] and len(rows) == 1 + 5 + 1
    assert rows[1][1].startswith("'=")
    assert "ERROR unreachable" in rows[-1][1]


def test_audit_view_stays_within_one_message_and_says_what_is_left_out() -> None:
    from jobs.audit import AuditEntry

    entries = [AuditEntry(f"U{i:08d}", "C0123456", "ips " + "10.0.0.1 " * 15, "accepted", "x" * 60, f"hv{i:010d}",
                          1.7e9) for i in range(100)]
    view = views.audit_list(entries)
    text = str(view.block_dicts())
    assert len(text) < 13_000 and "older entries do not fit" in text


def test_wide_rows_shrink_the_page_not_the_rows() -> None:
    extra = [f"c{j}" for j in range(25)]
    report = {"kind": "vms", "columns": ["host", "vm", *extra], "errors": [], "hosts_ok": ["hv-0"],
              "rows": [{"host": "hv-0", "vm": f"vm{i:03d}", **{c: "x" * 35 for c in extra}} for i in range(60)]}
    first = views.result("vms", "j", report, 0, 20)
    text = str(first.block_dicts())
    assert len(text) < 13_000
    nxt = [e for b in first.block_dicts() if b["type"] == "actions" for e in b["elements"]
           if e["action_id"] == "hvbot_page_next"][0]
    job, page, per = nxt["value"].split(":")
    assert int(per) < 20 and page == "1"
    seen = set()
    for p in range(views.page_count(report, int(per))):
        seen.update(r["vm"] for r in report["rows"] if r["vm"] in str(views.result("vms", "j", report, p, int(per)).block_dicts()))
    assert len(seen) == 60
