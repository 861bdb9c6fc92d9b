"""Typed records parsed from deserialized Hyper-V objects (pypsrp ``GenericComplexObject``).

Over PSRP, .NET properties arrive in ``adapted_properties`` and type-data aliases/note properties in
``extended_properties``; enums arrive as objects whose ``str()`` is the member name; DateTime and TimeSpan
arrive as raw XML text (hyperv.md §5.3). Every property may be missing on an older host: parsers
return ``None`` then, never raise.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any


def prop(obj: Any, name: str) -> Any:
    """A property by name from adapted, then extended properties; ``None`` when absent."""
    for bag in ("adapted_properties", "extended_properties"):
        values = getattr(obj, bag, None)
        if isinstance(values, dict) and name in values:
            return values[name]
    return None


def type_name(obj: Any) -> str:
    """The object's own .NET type, short (``VirtualMachine``), without a ``Deserialized.`` prefix."""
    types = getattr(obj, "types", None) or []
    first = str(types[0]) if types else ""
    return first.removeprefix("Deserialized.").rsplit(".", 1)[-1]


def enum_name(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text != "" else None


def as_str(value: Any) -> str | None:
    return None if value is None else str(value)


def as_int(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def as_bool(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return True if text == "true" else False if text == "false" else None


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v is not None]
    return [str(value)]


_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_datetime(value: Any) -> datetime | None:
    """PowerShell's round-trip DateTime text (7 fraction digits, the host's offset) as UTC: hosts in different
    time zones compare and display alike. Naive text (no offset) is taken as UTC."""
    if value is None or isinstance(value, datetime):
        return value
    text = _FRACTION.sub(r"\1", str(value).strip()).replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


_XS_DURATION = re.compile(
    r"^(?P<sign>-)?P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)
_DOTNET_SPAN = re.compile(r"^(?P<sign>-)?(?:(?P<d>\d+)\.)?(?P<h>\d+):(?P<m>\d+):(?P<s>\d+(?:\.\d+)?)$")


def parse_timespan(value: Any) -> float | None:
    """Seconds from a TimeSpan as xs:duration (``P1DT2H3M4.5S``, what PSRP sends) or .NET text."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    text = str(value).strip()
    match = _XS_DURATION.match(text) or _DOTNET_SPAN.match(text)
    if match is None or text in ("P", "PT"):
        return None
    parts = {k: float(v) for k, v in match.groupdict().items() if k != "sign" and v}
    seconds = parts.get("d", 0) * 86400 + parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)
    return -seconds if match.group("sign") else seconds


def split_ips(addresses: list[str]) -> tuple[list[str], list[str]]:
    v4: list[str] = []
    v6: list[str] = []
    for text in addresses:
        try:
            addr = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            continue  # the guest reported something that is not an address; leave it out
        (v4 if addr.version == 4 else v6).append(text)
    return v4, v6


@dataclass(frozen=True)
class VmRecord:
    host: str
    name: str
    id: str | None
    state: str | None
    uptime_s: float | None
    cpu_usage: int | None
    processor_count: int | None
    memory_assigned: int | None
    memory_demand: int | None
    memory_startup: int | None
    memory_minimum: int | None
    memory_maximum: int | None
    dynamic_memory: bool | None
    memory_status: str | None
    replication_mode: str | None
    replication_state: str | None
    replication_health: str | None
    heartbeat: str | None
    creation_time: datetime | None

    @classmethod
    def parse(cls, host: str, obj: Any) -> VmRecord:
        p = lambda n: prop(obj, n)  # noqa: E731 - short local accessor
        return cls(
            host=host, name=as_str(p("Name") or p("VMName")) or "", id=as_str(p("Id") or p("VMId")),
            state=enum_name(p("State")), uptime_s=parse_timespan(p("Uptime")), cpu_usage=as_int(p("CPUUsage")),
            processor_count=as_int(p("ProcessorCount")), memory_assigned=as_int(p("MemoryAssigned")),
            memory_demand=as_int(p("MemoryDemand")), memory_startup=as_int(p("MemoryStartup")),
            memory_minimum=as_int(p("MemoryMinimum")), memory_maximum=as_int(p("MemoryMaximum")),
            dynamic_memory=as_bool(p("DynamicMemoryEnabled")), memory_status=as_str(p("MemoryStatus")),
            replication_mode=enum_name(p("ReplicationMode")), replication_state=enum_name(p("ReplicationState")),
            replication_health=enum_name(p("ReplicationHealth")), heartbeat=enum_name(p("Heartbeat")),
            creation_time=parse_datetime(p("CreationTime")),
        )


@dataclass(frozen=True)
class NetAdapterRecord:
    host: str
    vm_name: str
    vm_id: str | None
    name: str | None
    mac: str | None
    switch_name: str | None
    ip_addresses: tuple[str, ...]
    allow_teaming: str | None

    @property
    def ipv4(self) -> list[str]:
        return split_ips(list(self.ip_addresses))[0]

    @property
    def ipv6(self) -> list[str]:
        return split_ips(list(self.ip_addresses))[1]

    @classmethod
    def parse(cls, host: str, obj: Any) -> NetAdapterRecord:
        return cls(
            host=host, vm_name=as_str(prop(obj, "VMName")) or "", vm_id=as_str(prop(obj, "VMId")),
            name=as_str(prop(obj, "Name")), mac=as_str(prop(obj, "MacAddress")), switch_name=as_str(prop(obj, "SwitchName")),
            ip_addresses=tuple(as_list(prop(obj, "IPAddresses"))), allow_teaming=enum_name(prop(obj, "AllowTeaming")),
        )


@dataclass(frozen=True)
class MemoryRecord:
    host: str
    vm_name: str
    vm_id: str | None
    dynamic: bool | None
    startup: int | None
    minimum: int | None
    maximum: int | None
    buffer: int | None
    priority: int | None

    @classmethod
    def parse(cls, host: str, obj: Any) -> MemoryRecord:
        return cls(
            host=host, vm_name=as_str(prop(obj, "VMName")) or "", vm_id=as_str(prop(obj, "VMId")),
            dynamic=as_bool(prop(obj, "DynamicMemoryEnabled")),
            startup=as_int(prop(obj, "Startup")), minimum=as_int(prop(obj, "Minimum")),
            maximum=as_int(prop(obj, "Maximum")), buffer=as_int(prop(obj, "Buffer")),
            priority=as_int(prop(obj, "Priority")),
        )


@dataclass(frozen=True)
class SnapshotRecord:
    host: str
    vm_name: str
    name: str
    id: str | None
    snapshot_type: str | None
    creation_time: datetime | None
    parent_name: str | None
    parent_id: str | None

    @classmethod
    def parse(cls, host: str, obj: Any) -> SnapshotRecord:
        return cls(
            host=host, vm_name=as_str(prop(obj, "VMName")) or "", name=as_str(prop(obj, "Name")) or "",
            id=as_str(prop(obj, "Id")), snapshot_type=enum_name(prop(obj, "SnapshotType")),
            creation_time=parse_datetime(prop(obj, "CreationTime")),
            parent_name=as_str(prop(obj, "ParentSnapshotName")), parent_id=as_str(prop(obj, "ParentSnapshotId")),
        )
