"""Lookup answers people can read (bot/views/tables.py via views.common.result); the CSV keeps exact values."""

from datetime import UTC, datetime
from typing import Any

from bot.adapters.render_text import render_blocks
from bot.views import common as views
from bot.views.failover import sides_text
from bot.views.legend import STATE_MEANINGS, legend_text, state_legend
from jobs.audit import AuditEntry
from jobs.inventory.queries import CHECKPOINT_COLUMNS, MEMORY_COLUMNS, VM_COLUMNS

GIB = 1024**3
NOW = datetime(2026, 12, 6, 14, 30, tzinfo=UTC)


def _memory_row(vm: str, assigned: int, demand: int, maximum: int, at_max: bool) -> dict[str, Any]:
    return {"host": "hv-a1", "vm": vm, "dynamic": True, "startup": 4 * GIB, "minimum": GIB // 2, "maximum": maximum,
            "buffer": 20, "priority": 50, "assigned": assigned, "demand": demand,
            "pressure_pct": round(demand * 100 / assigned), "at_maximum": at_max}


def _text(view: views.View) -> str:
    return "\n".join(render_blocks(view.block_dicts(), view.text, lambda *_: 0))


def test_memory_reads_in_gib_with_plain_column_names_and_an_at_max_marker() -> None:
    report = {"kind": "memory", "columns": MEMORY_COLUMNS, "hosts_ok": ["hv-a1"], "errors": [],
              "rows": [_memory_row("web01", 4 * GIB, 2576980377, 16 * GIB, False),
                       _memory_row("sql01", 2 * GIB, 3 * GIB, 2 * GIB, True)]}
    text = _text(views.result("memory", "hv1", report, now=NOW))
    header = next(line for line in text.splitlines() if line.lstrip().startswith("host"))
    assert header.split() == ["host", "VM", "dynamic", "startup", "min", "max", "buffer", "priority", "assigned",
                              "demand", "pressure", "at", "max"]
    web = next(line for line in text.splitlines() if "web01" in line)
    assert web.split() == ["hv-a1", "web01", "yes", "4", "GiB", "512", "MiB", "16", "GiB", "20%", "50", "4", "GiB",
                           "2.4", "GiB", "60%"]
    sql = next(line for line in text.splitlines() if "sql01" in line)
    assert sql.rstrip().endswith("◆ at max") and "4294967296" not in text
    assert "2 rows; 1 host answered" in text
    # the CSV keeps exact bytes and the plain field names
    csv_text = views.report_csv(report)
    assert "4294967296" in csv_text and "at_maximum" in csv_text.splitlines()[0]


def test_at_max_answers_the_question_it_was_asked() -> None:
    report = {"kind": "memory", "columns": MEMORY_COLUMNS, "hosts_ok": ["hv-a1", "hv-b1"], "errors": [], "rows": []}
    text = _text(views.result("memory --at-max", "hv1", report, now=NOW))
    assert "No VM has reached its dynamic memory maximum." in text and "0 VMs at their maximum; 2 hosts" in text
    report["rows"] = [_memory_row("sql01", 2 * GIB, 3 * GIB, 2 * GIB, True)]
    assert "1 VM at its maximum; 2 hosts answered" in _text(views.result("memory --at-max", "hv1", report, now=NOW))


def test_vms_show_uptime_in_words_and_a_legend_for_cryptic_states() -> None:
    row = {"host": "hv-a1", "vm": "web01", "state": "Running", "uptime_s": 3 * 3600 + 5 * 60 + 7, "cpu_usage": 4,
           "processors": 2, "memory_assigned": 4 * GIB, "memory_demand": 2 * GIB, "replication_mode": "Primary",
           "replication_state": "WaitingForStartResynchronize", "replication_health": "Critical"}
    plain = dict(row, vm="web02", replication_state="Replicating", replication_health="Normal")
    local = dict(row, vm="app01", state="Off", uptime_s=0, memory_assigned=0, memory_demand=0, replication_mode="None",
                 replication_state="Disabled", replication_health="NotApplicable")
    report = {"kind": "vms", "columns": VM_COLUMNS, "hosts_ok": ["hv-a1"], "errors": [], "rows": [row, plain, local]}
    text = _text(views.result("vms", "hv1", report, now=NOW))
    assert "3 h 5 min" in text and "4 GiB" in text and "4%" in text
    app = next(line for line in text.splitlines() if "app01" in line).split()
    assert app[app.index("Off") + 1:] == ["4%", "2", "—", "—", "none", "Disabled", "n/a"]  # off: no uptime, no memory
    assert "WaitingForStartResynchronize: the primary needs a resynchronization" in text
    assert "Replicating:" not in text  # a plain state needs no legend


def test_checkpoint_times_are_absolute_with_their_age() -> None:
    row = {"host": "hv-a1", "vm": "web01", "name": "before patch", "type": "Standard",
           "created": "2026-12-06T14:18:05+00:00", "parent": None}
    report = {"kind": "checkpoints", "columns": CHECKPOINT_COLUMNS, "hosts_ok": ["hv-a1"], "errors": [],
              "rows": [row]}
    text = _text(views.result("checkpoints web01", "hv1", report, now=NOW))
    assert "2026-12-06 14:18 UTC (11 min ago)" in text and "1 row; 1 host answered" in text


def test_a_large_readable_table_still_fits_block_kit() -> None:
    rows = [_memory_row(f"vm{i:04d}", 4 * GIB, 3 * GIB, 4 * GIB, i % 3 == 0) for i in range(600)]
    report = {"kind": "memory", "columns": MEMORY_COLUMNS, "hosts_ok": ["hv-a1"], "errors": [], "rows": rows}
    view = views.result("memory", "hv1", report, rows_per_page=200, now=NOW)
    blocks = view.block_dicts()  # slack_sdk validates every block
    assert len(blocks) <= views.MAX_BLOCKS and sum(len(str(b)) for b in blocks) <= views.MESSAGE_CHARS


def test_legend_lines_once_each_and_only_for_known_cryptic_states() -> None:
    lines = state_legend(["Resynchronizing", "Replicating", "Resynchronizing", None, "FailedOverWaitingCompletion"])
    assert [line.split(":")[0] for line in lines] == ["Resynchronizing", "FailedOverWaitingCompletion"]
    assert legend_text(["Replicating", "Suspended"]) == ""
    assert set(STATE_MEANINGS) <= {  # every name is a real VMReplicationState member
        "ReadyForInitialReplication", "InitialReplicationInProgress", "WaitingForInitialReplication",
        "PreparedForFailover", "FailedOverWaitingCompletion", "FailedOver", "Error", "WaitingForStartResynchronize",
        "Resynchronizing", "ResynchronizeSuspended", "RecoveryInProgress", "FailbackInProgress", "FailbackComplete",
        "WaitingForUpdateCompletion", "UpdateError", "WaitingForRepurposeCompletion", "PreparedForSyncReplication",
        "PreparedForGroupReverseReplication", "FiredrillInProgress"}


def test_failover_sides_say_when_and_explain_a_cryptic_state() -> None:
    sides = [{"host": "hv-a1", "mode": "Primary", "state": "WaitingForStartResynchronize", "health": "Critical",
              "vm_state": "Running", "last_replication": "2026-12-06T14:18:05+00:00"},
             {"host": "hv-b1", "mode": "Replica", "state": "Replicating", "health": "Normal", "vm_state": "Off",
              "last_replication": None}]
    text = sides_text(sides)
    assert "last replication 2026-12-06 14:18 UTC (" in text and "last replication never" in text
    assert "WaitingForStartResynchronize: the primary needs a resynchronization" in text
    assert "Replicating:" not in text
    assert "States:" not in sides_text([dict(sides[1], last_replication="2026-12-06T14:18:05+00:00")])


def test_audit_entries_show_their_utc_time_and_age() -> None:
    at = datetime(2026, 12, 6, 14, 18, 5, tzinfo=UTC).timestamp()
    entry = AuditEntry("U1", "C1", "failover fw01 unplanned", "approved", "by U2", "hv1", at)
    text = _text(views.audit_list([entry], now=NOW))
    assert "2026-12-06 14:18 UTC (11 min ago) U1 in C1: failover fw01 unplanned -> approved job hv1 by U2" in text
