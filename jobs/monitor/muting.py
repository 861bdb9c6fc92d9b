"""Which firing alerts a message leaves out, decided when the message is built (pure, no I/O).

Like Alertmanager, inhibition and silences are evaluated at send time against every alert firing at that moment
(rq-and-alerting.md §C1): a host-down alert mutes that host's VM alerts and the alerts of VMs whose partner
(the other side of the replication) is that host (§C3). A sweep only stores what it observed, including the
suppressions that belong to the observation itself (backup window, running failover), never a verdict that
depends on other hosts, so a partner swept before a host went dark is muted as soon as the host-down alert fires.

A silenced host-down alert still inhibits: it is firing, and the silence hides the host, not its outage.

An alert entry is what a host contributes to a group: {"row": AlertRow dict, "group", "partner" (short host or
""), "suppressed" (reason or None)}.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from jobs.monitor.rules import Condition, short_host


def inhibiting_hosts(entries: Iterable[dict]) -> set[str]:
    """Short names of the hosts whose host-down alert is among `entries` (firing entries only are stored)."""
    return {short_host(e["row"]["host"]) for e in entries if e["row"]["condition"] == Condition.HOST_UNREACHABLE}


def silence_reason(entry: dict, silences: Mapping[str, dict]) -> str | None:
    row = entry["row"]
    for s in silences.values():
        hit = (
            (s["kind"] == "vm" and row["vm"] and row["vm"].lower() == s["target"])
            or (s["kind"] == "host" and short_host(row["host"]) == s["target"])
            or (s["kind"] == "group" and entry["group"] == s["target"])
        )
        if hit:
            return f"{s['reason']} by {s['by']}"
    return None


@dataclass(frozen=True)
class Mutes:
    """Everything muting depends on at one moment: hosts that inhibit, and the active silences."""

    down: frozenset[str] = frozenset()  # short names: a firing host-down alert, or seen unreachable last sweep
    silences: Mapping[str, dict] = field(default_factory=dict)

    def reason(self, entry: dict) -> str | None:
        """Why this firing alert is left out of messages now, or None when it is shown."""
        row = entry["row"]
        if row["vm"]:  # a host-down alert never inhibits itself or another host's host-down alert
            if short_host(row["host"]) in self.down:
                return f"inhibited: host {row['host']} unreachable"
            if entry.get("partner") and entry["partner"] in self.down:
                return f"inhibited: host {entry['partner']} unreachable"
        return entry.get("suppressed") or silence_reason(entry, self.silences)

    def visible(self, entries: Iterable[dict]) -> list[dict]:
        return [e["row"] for e in entries if self.reason(e) is None]

    @property
    def key(self) -> str:
        """Changes whenever a message's muted rows could change: posted messages are reviewed then."""
        state = {"down": sorted(self.down), "silences": sorted(self.silences)}
        return hashlib.sha1(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]
