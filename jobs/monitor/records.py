"""Alert records of one host, sweep by sweep (pure): debounce, keep-firing, silences, group contributions.

A record is a JSON-able dict stored per fingerprint in Redis by `jobs.monitor.state`:
  row, severity, group, scope, status (pending|firing), streak (sweeps seen in a row), clean (sweeps not
  seen in a row), first_seen, last_seen, base_muted (inhibited/suppressed), muted (base_muted or silence).
"""

from __future__ import annotations

import hashlib

from jobs.monitor.rules import AlertRow, AlertRules, Finding, group_key, short_host

Contribution = dict  # {"rows": [row dict, ...] (visible), "firing": int}


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
            new[fp] = {**rec, "base_muted": f"inhibited: host {host} unreachable"}  # unknown, not resolved
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
        "muted": f.muted_reason,
    }


def silenced(rec: dict, silences: dict[str, dict]) -> str | None:
    row = rec["row"]
    for s in silences.values():
        hit = (
            (s["kind"] == "vm" and row["vm"] and row["vm"].lower() == s["target"])
            or (s["kind"] == "host" and short_host(row["host"]) == s["target"])
            or (s["kind"] == "group" and rec["group"] == s["target"])
        )
        if hit:
            return f"{s['reason']} by {s['by']}"
    return None


def contributions(records: dict[str, dict]) -> dict[str, Contribution]:
    out: dict[str, Contribution] = {}
    for rec in records.values():
        if rec["status"] != "firing":
            continue
        c = out.setdefault(rec["group"], {"rows": [], "firing": 0})
        c["firing"] += 1
        if not rec["muted"]:
            c["rows"].append(rec["row"])
    return out


def signature(c: Contribution | None) -> tuple:
    if not c:
        return ((), 0)
    return (tuple(sorted(r["fingerprint"] for r in c["rows"])), c["firing"])


def members_hash(rows: list[AlertRow]) -> str:
    return hashlib.sha1("\n".join(sorted(r.fingerprint for r in rows)).encode()).hexdigest()
