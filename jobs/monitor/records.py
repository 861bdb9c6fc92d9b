"""Alert records of one host, sweep by sweep (pure): debounce, keep-firing, group contributions.

A record is a JSON-able dict stored per fingerprint in Redis by `jobs.monitor.state`:
  row, severity, group, scope, status (pending|firing), streak (sweeps seen in a row), clean (sweeps not
  seen in a row), first_seen, last_seen, partner (short host of the replication partner, or ""), base_muted
  (suppressed by the observation itself: backup window, running failover).
Records store no inhibition or silence verdict: both depend on other hosts' alerts and on silences that change
between sweeps, so `jobs.monitor.muting` decides them when a message is built.
"""

from __future__ import annotations

import hashlib

from jobs.monitor.rules import AlertRow, AlertRules, Finding, group_key

Contribution = dict  # {"alerts": [muting entry, ...] (every firing alert of the host in the group)}


def next_records(
    old: dict[str, dict], findings: list[Finding], reachable: bool, host: str, rules: AlertRules, ts: float,
) -> tuple[dict[str, dict], list[dict]]:
    """New alert records of one host, and the firing records that resolved this sweep."""
    new: dict[str, dict] = {}
    for f in findings:
        new[f.fingerprint] = seen(old.get(f.fingerprint), f, ts)
    resolved: list[dict] = []
    for fp, rec in old.items():
        if fp in new:
            continue
        if not reachable and rec["row"]["condition"] != "host_unreachable":
            new[fp] = dict(rec)  # unknown, not resolved; the host-down alert inhibits it
        elif rec["status"] == "firing":
            clean = rec["clean"] + 1
            if clean >= rules.resolve_after_sweeps:
                resolved.append(rec)
            else:
                new[fp] = {**rec, "clean": clean}  # keep firing through short clears (flapping)
        # a pending record that is not seen again simply ends: "persists N sweeps" was broken
    return new, resolved


def seen(old: dict | None, f: Finding, ts: float) -> dict:
    streak = old["streak"] + 1 if old else 1
    firing = bool(old and old["status"] == "firing") or streak >= f.for_sweeps
    return {
        "row": f.row.to_dict(), "severity": f.severity.value,
        "group": group_key(f.row.condition, f.group_scope), "scope": f.group_scope,
        "status": "firing" if firing else "pending", "streak": streak, "clean": 0,
        "first_seen": old["first_seen"] if old else ts, "last_seen": ts, "base_muted": f.muted_reason,
        "partner": f.partner,
    }


def entry(rec: dict) -> dict:
    """What muting needs of one firing record (jobs.monitor.muting)."""
    return {"row": rec["row"], "group": rec["group"], "partner": rec.get("partner", ""),
            "suppressed": rec.get("base_muted")}


def contributions(records: dict[str, dict]) -> dict[str, Contribution]:
    out: dict[str, Contribution] = {}
    for rec in records.values():
        if rec["status"] == "firing":
            out.setdefault(rec["group"], {"alerts": []})["alerts"].append(entry(rec))
    return out


def contribution_entries(c: Contribution, group: str = "") -> list[dict]:
    """The firing alerts of a stored contribution; one written by an older release kept only its visible rows
    (until that host's next sweep rewrites it)."""
    if "alerts" in c:
        return list(c["alerts"])
    return [{"row": row, "group": group, "partner": "", "suppressed": None} for row in c.get("rows", [])]


def signature(c: Contribution | None) -> tuple:
    """What makes a host's part of a group different for a message: its alerts and their own suppression."""
    if not c:
        return ()
    return tuple(sorted((e["row"]["fingerprint"], e["suppressed"] or "") for e in contribution_entries(c)))


def members_hash(rows: list[AlertRow]) -> str:
    return hashlib.sha1("\n".join(sorted(r.fingerprint for r in rows)).encode()).hexdigest()
