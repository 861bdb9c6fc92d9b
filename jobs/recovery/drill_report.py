"""The drill report: plain JSON-able data, suitable as audit evidence (attached whole as a file).

Per VM: the recovery point used and its age, the time to heartbeat, the result, the problems found. Overall:
counts, the measured recovery time, and who started it when. ``summary_lines`` is the short text form.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from jobs import units

RESULTS = ("passed", "failed", "refused", "cleanup_failed")


def build(drill_id: str, target: str, plan: str, trigger: str, requested_by: str, started: datetime,
          outcome: dict[str, Any], error: str = "") -> dict[str, Any]:
    rows = outcome.get("vms", [])
    recovered = [r["recovery_s"] for r in rows if r.get("recovery_s") is not None]
    beats = [r["time_to_heartbeat_s"] for r in rows if r.get("time_to_heartbeat_s") is not None]
    problems = [f"{r['vm']}: {p}" for r in rows for p in r.get("problems", [])]
    if error:
        problems.insert(0, error)
    return {
        "drill_id": drill_id, "target": target, "plan": plan, "trigger": trigger, "requested_by": requested_by,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "ok": bool(outcome.get("ok")) and not error, "refused": bool(outcome.get("refused")),
        "abandoned": bool(outcome.get("abandoned")),
        "counts": {k: sum(1 for r in rows if r.get("result") == k) for k in RESULTS},
        "measured_recovery_s": max(recovered) if recovered and len(recovered) == len(rows) else None,
        "slowest_heartbeat_s": max(beats) if beats else None,
        "left_behind": [r["vm"] for r in rows if not r.get("cleaned", True)],
        "problems": problems,
        "vms": rows,
    }


def verdict(report: dict[str, Any]) -> str:
    if report["refused"]:
        return "REFUSED (nothing was started)"
    if report["abandoned"]:
        return "ABANDONED (the worker stopped; test VMs cleaned up)" if not report["left_behind"] else \
            "ABANDONED (the worker stopped; test VMs could not all be removed)"
    return "PASSED" if report["ok"] else "FAILED"


def summary_lines(report: dict[str, Any]) -> list[str]:
    c = report["counts"]
    title = report["plan"] and f"plan {report['plan']}" or report["target"]
    lines = [f"Drill of {title}: {verdict(report)}",
             f"{units.plural(len(report['vms']), 'VM')}: {c['passed']} passed, {c['failed']} failed, "
             f"{c['refused']} refused, "
             f"{c['cleanup_failed']} not cleaned up"]
    if report["measured_recovery_s"] is not None:
        lines.append(f"measured recovery time {report['measured_recovery_s']:.0f} s "
                     f"(slowest heartbeat {report['slowest_heartbeat_s']:.0f} s after start)")
    if report["left_behind"]:
        lines.append("test VMs LEFT BEHIND: " + ", ".join(report["left_behind"]))
    return lines


def vm_line(row: dict[str, Any]) -> str:
    mark = {"passed": "✓", "refused": "–"}.get(row["result"], "✗")
    parts = [f"{mark} {row['vm']} on {row['replica_host']}: {row['result']}"]
    if row.get("recovery_point"):
        age = f", {row['point_age_s']:.0f} s old" if row.get("point_age_s") is not None else ""
        parts.append(f"point '{row['recovery_point']}'{age}")
    if row.get("time_to_heartbeat_s") is not None:
        parts.append(f"heartbeat after {row['time_to_heartbeat_s']:.0f} s")
    if row.get("problems"):
        parts.append("; ".join(row["problems"]))
    return " · ".join(parts)


def as_file(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True, default=str)
