"""Replica health alert conditions: one sweep's observations -> findings (pure, no I/O).

Conditions follow reference/hyperv.md §3.2, §3.7 and §7; Alertmanager-like behaviour (grouping, waits,
silences) lives in `jobs.monitor.state`. `now` is always passed in, never read from the clock here.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field, field_validator


class Condition(StrEnum):
    HEALTH_CRITICAL = "health_critical"
    HEALTH_WARNING = "health_warning"
    STATE = "replication_state"
    LAG = "replication_lag"
    MISSED_CYCLES = "missed_cycles"
    HOST_UNREACHABLE = "host_unreachable"


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"


@dataclass(frozen=True)
class ReplicaObservation:
    """One VM's replication as seen on `host` in one sweep (Get-VMReplication + Measure-VMReplication)."""

    host: str
    site: str
    vm: str
    mode: str  # VMReplicationMode name: Primary, Replica, ExtendedReplica, TestReplica
    state: str  # VMReplicationState name (§3.2)
    health: str  # Normal | Warning | Critical (§3.3)
    frequency_sec: int
    last_replication_time: datetime | None
    successful_count: int = 0
    missed_count: int = 0
    in_backup_window: bool = False
    under_failover: bool = False
    partner_host: str | None = None  # the other side (PrimaryServerName / ReplicaServerName), for inhibition

    @property
    def missed_ratio(self) -> float | None:
        total = self.successful_count + self.missed_count
        return None if total == 0 else self.missed_count / total


@dataclass(frozen=True)
class HostObservation:
    host: str
    site: str
    reachable: bool
    error: str = ""


class AlertRouting(BaseModel):
    """Where each severity goes; channel names come from config."""

    critical_channel: str = "#hv-oncall"
    warning_channel: str = "#hv-ops"
    oncall_mention: str | None = None  # e.g. "<!subteam^S012345>" for the on-call user group


def _default_severity() -> dict[Condition, Severity]:
    return {
        Condition.HEALTH_CRITICAL: Severity.CRITICAL,
        Condition.HEALTH_WARNING: Severity.WARNING,
        Condition.STATE: Severity.CRITICAL,
        Condition.LAG: Severity.WARNING,  # §3.7: > 1 h since last replication is a Warning trigger
        Condition.MISSED_CYCLES: Severity.WARNING,  # §3.7: > 20 % missed is a Warning trigger
        Condition.HOST_UNREACHABLE: Severity.CRITICAL,
    }


class AlertRules(BaseModel):
    """Every condition and timer is configurable; defaults follow hyperv.md §7 and Alertmanager (§C1)."""

    enabled: set[Condition] = Field(default_factory=lambda: set(Condition))
    severity: dict[Condition, Severity] = Field(default_factory=_default_severity)
    warning_sweeps: int = Field(3, ge=1)  # a Warning must persist this many consecutive sweeps
    bad_states: set[str] = Field(
        default_factory=lambda: {"Error", "WaitingForStartResynchronize", "ResynchronizeSuspended"}
    )
    suspended_outside_backup_window: bool = True
    lag_frequency_multiple: float = Field(4.0, gt=0)
    lag_cap_s: int = Field(3600, gt=0)  # §7: Hyper-V's own Warning threshold is 1 hour
    missed_ratio_max: float = Field(0.20, ge=0, le=1)
    alert_modes: set[str] = Field(default_factory=lambda: {"Primary", "Replica", "ExtendedReplica"})
    group_by: str = Field("site", pattern="^(site|host)$")
    group_wait_s: float = Field(30.0, ge=0)
    # Alertmanager's group_interval is 5 m; an in-place chat.update is cheap, so membership edits go out sooner.
    group_interval_s: float = Field(60.0, ge=0)
    repeat_interval_s: float = Field(4 * 3600.0, gt=0)
    resolve_after_sweeps: int = Field(2, ge=1)  # clean sweeps in a row before resolving (keep_firing_for)
    coalesce_after_groups: int = Field(2, ge=1)  # more new groups than this per channel -> one storm message
    max_inline_rows: int = Field(40, ge=1)
    routing: AlertRouting = Field(default_factory=AlertRouting)

    @field_validator("severity")
    @classmethod
    def _fill_severity(cls, value: dict[Condition, Severity]) -> dict[Condition, Severity]:
        return {**_default_severity(), **value}  # config may override just some conditions

    def lag_threshold_s(self, frequency_sec: int) -> float:
        return min(self.lag_frequency_multiple * max(frequency_sec, 1), float(self.lag_cap_s))


@dataclass(frozen=True)
class AlertRow:
    """What a message shows for one alert: JSON-able, no Slack code."""

    fingerprint: str
    condition: str
    host: str
    site: str
    vm: str
    state: str = ""
    health: str = ""
    last_replication: str | None = None  # ISO 8601
    lag_s: int | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> AlertRow:
        return cls(**data)


@dataclass(frozen=True)
class Finding:
    """A condition that holds in this sweep for one (host, vm, condition)."""

    row: AlertRow
    severity: Severity
    for_sweeps: int = 1
    muted_reason: str | None = None  # suppressed by the observation itself (backup window, failover)
    group_scope: str = field(default="")
    partner: str = ""  # short name of the replication partner host: its host-down alert inhibits this one

    @property
    def fingerprint(self) -> str:
        return self.row.fingerprint


def fingerprint(host: str, vm: str, condition: str) -> str:
    return hashlib.sha1(f"{host.lower()}\0{vm.lower()}\0{condition}".encode()).hexdigest()[:16]


def short_host(name: str) -> str:
    """Hyper-V reports FQDNs (PrimaryServerName), the inventory short names: compare on the first label."""
    return name.split(".", 1)[0].lower()


def group_key(condition: str, scope: str) -> str:
    return f"{condition}:{scope}"


def route(severity: Severity, rules: AlertRules) -> tuple[str, str | None]:
    r = rules.routing
    if severity == Severity.CRITICAL:
        return r.critical_channel, r.oncall_mention
    return r.warning_channel, None


def _vm_conditions(obs: ReplicaObservation, now: datetime, rules: AlertRules) -> list[tuple[Condition, str, int]]:
    """(condition, detail, for_sweeps) for every condition this observation meets."""
    found: list[tuple[Condition, str, int]] = []
    if obs.health == "Critical":
        found.append((Condition.HEALTH_CRITICAL, "health Critical", 1))
    elif obs.health == "Warning":
        found.append((Condition.HEALTH_WARNING, "health Warning", rules.warning_sweeps))
    suspended = obs.state == "Suspended" and rules.suspended_outside_backup_window and not obs.in_backup_window
    if obs.state in rules.bad_states or suspended:
        found.append((Condition.STATE, f"state {obs.state}", 1))
    lag = _lag_s(obs, now)
    if lag is not None and lag > rules.lag_threshold_s(obs.frequency_sec):
        found.append((Condition.LAG, f"last replication {lag} s ago", 1))
    ratio = obs.missed_ratio
    if ratio is not None and ratio > rules.missed_ratio_max:
        found.append((Condition.MISSED_CYCLES, f"{ratio:.0%} of cycles missed", 1))
    return [f for f in found if f[0] in rules.enabled]


def _lag_s(obs: ReplicaObservation, now: datetime) -> int | None:
    if obs.last_replication_time is None:
        return None
    return max(0, int((now - obs.last_replication_time).total_seconds()))


def _vm_suppressed_reason(obs: ReplicaObservation) -> str | None:
    """Only what the observation itself says; inhibition by other hosts is decided per message
    (jobs.monitor.muting), since it depends on alerts other sweeps record."""
    if obs.under_failover:
        return "suppressed: failover running"
    if obs.in_backup_window:
        return "suppressed: backup window"
    return None


def vm_findings(obs: ReplicaObservation, now: datetime, rules: AlertRules) -> list[Finding]:
    if obs.mode not in rules.alert_modes:
        return []
    scope = obs.site if rules.group_by == "site" else obs.host
    muted = _vm_suppressed_reason(obs)
    partner = short_host(obs.partner_host) if obs.partner_host else ""
    last = obs.last_replication_time.isoformat() if obs.last_replication_time else None
    out = []
    for cond, detail, for_sweeps in _vm_conditions(obs, now, rules):
        row = AlertRow(
            fingerprint=fingerprint(obs.host, obs.vm, cond), condition=cond.value, host=obs.host,
            site=obs.site, vm=obs.vm, state=obs.state, health=obs.health, last_replication=last,
            lag_s=_lag_s(obs, now), detail=detail,
        )
        out.append(Finding(row, rules.severity[cond], for_sweeps, muted, scope, partner))
    return out


def host_finding(obs: HostObservation, rules: AlertRules) -> Finding | None:
    if obs.reachable or Condition.HOST_UNREACHABLE not in rules.enabled:
        return None
    cond = Condition.HOST_UNREACHABLE
    row = AlertRow(
        fingerprint=fingerprint(obs.host, "", cond), condition=cond.value, host=obs.host, site=obs.site,
        vm="", detail=obs.error or "host unreachable",
    )
    scope = obs.site if rules.group_by == "site" else obs.host
    return Finding(row, rules.severity[cond], 1, None, scope)


def evaluate(
    replicas: list[ReplicaObservation], hosts: list[HostObservation], now: datetime, rules: AlertRules,
) -> list[Finding]:
    """All findings of one sweep, inhibited or not: inhibition is evaluated when a message is built."""
    out: list[Finding] = []
    for h in hosts:
        f = host_finding(h, rules)
        if f is not None:
            out.append(f)
    for obs in replicas:
        out.extend(vm_findings(obs, now, rules))
    return out
