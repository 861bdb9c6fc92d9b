"""Argument type conversion as PowerShell's binder does it, for the parameter types the lab's cmdlets use.

Messages follow .NET/PowerShell 5.1 wording ("Cannot convert value "x" to type "System.Int32". Error: ...").
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from lab import hvdata

SYSTEM_TYPES = {"String", "Int32", "Int64", "UInt32", "Boolean", "DateTime", "TimeSpan", "Guid",
                "SwitchParameter", "ActionPreference"}
INT_RANGES = {"Int32": (-(2**31), 2**31 - 1), "Int64": (-(2**63), 2**63 - 1), "UInt32": (0, 2**32 - 1)}
TIMESPAN_RE = re.compile(r"^(-)?(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?$")


class CoercionError(Exception):
    """``kind``: validateset | boolean | convert | object; ``error_id`` is the binder's error id."""

    def __init__(self, message: str, kind: str = "convert", shown: str = "",
                 error_id: str = "CannotConvertArgumentNoMessage") -> None:
        super().__init__(message)
        self.kind = kind
        self.shown = shown
        self.error_id = error_id


def dotnet_type(type_name: str) -> str:
    """The full .NET name PowerShell prints for a parameter type."""
    base, array = (type_name[:-2], "[]") if type_name.endswith("[]") else (type_name, "")
    if base == "ActionPreference":
        return "System.Management.Automation.ActionPreference" + array
    if base == "SwitchParameter":
        return "System.Management.Automation.SwitchParameter"
    if base in SYSTEM_TYPES:
        return f"System.{base}{array}"
    if base == "PSObject":
        return "System.Management.Automation.PSObject" + array
    return f"{hvdata.NS}{base}{array}"


def _convert_error(value: Any, type_name: str, reason: str) -> CoercionError:
    return CoercionError(f"Cannot convert value \"{value}\" to type \"{dotnet_type(type_name)}\". "
                         f"Error: \"{reason}\"")


def _to_int(value: Any, type_name: str) -> int:
    if isinstance(value, bool):
        return int(value)
    try:
        number = int(value) if not isinstance(value, str) else int(value.strip(), 0 if "x" in value else 10)
    except (TypeError, ValueError):
        raise _convert_error(value, type_name, "Input string was not in a correct format.") from None
    low, high = INT_RANGES[type_name]
    if not low <= number <= high:
        raise _convert_error(value, type_name, f"Value was either too large or too small for an {type_name}.")
    return number


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    shown = "System.String" if isinstance(value, str) else f"System.{type(value).__name__}"
    raise CoercionError("boolean", kind="boolean", shown=shown)


def _to_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        for fmt in ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y", "%Y-%m-%d %H:%M"):
            try:
                return datetime.strptime(str(value), fmt)
            except ValueError:
                continue
    raise _convert_error(value, "DateTime", "String was not recognized as a valid DateTime.")


def _to_timespan(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return timedelta(microseconds=value / 10)  # an integer converts as ticks (100 ns)
    match = TIMESPAN_RE.match(str(value).strip())
    if not match:
        raise _convert_error(value, "TimeSpan", "String was not recognized as a valid TimeSpan.")
    sign, days, hours, minutes, seconds, fraction = match.groups()
    span = timedelta(days=int(days or 0), hours=int(hours), minutes=int(minutes), seconds=int(seconds or 0),
                     microseconds=int((fraction or "0").ljust(7, "0")[:6]))
    return -span if sign else span


def _to_guid(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise _convert_error(value, "Guid", "Guid should contain 32 digits with 4 dashes "
                                            "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).") from None


def _to_enum(type_name: str, value: Any, accepted: list[str]) -> str:
    members = hvdata.enum_members(type_name) if hvdata.is_enum(type_name) else {n: i for i, n in
                                                                              enumerate(accepted)}
    allowed = accepted or list(members)
    if isinstance(value, int) and not isinstance(value, bool):
        by_value = [n for n, i in members.items() if i == value and n in allowed]
        if by_value:
            return by_value[0]
    for name in allowed:
        if name.lower() == str(value).strip().lower():
            return name
    raise CoercionError("validateset", kind="validateset")


def _to_object(type_name: str, value: Any) -> Any:
    kind = getattr(value, "ps_kind", None)
    base = type_name[:-2] if type_name.endswith("[]") else type_name
    ok = kind is not None and (kind == base or (base == "VirtualMachineBase" and kind in ("VirtualMachine",
                                                                                        "VMSnapshot")))
    if not ok and base not in ("PSObject", "Object", "CimSession", "PSCredential"):
        shown_type = "System.String" if isinstance(value, str) else (kind or type(value).__name__)
        raise CoercionError(f"Cannot convert the \"{value}\" value of type \"{shown_type}\" to type "
                            f"\"{dotnet_type(base)}\".", error_id="CannotConvertArgument")
    return value


def coerce(type_name: str, value: Any, accepted: list[str] | None = None) -> Any:
    """Convert ``value`` for a parameter of ``type_name`` (as written in hyperv-cmdlets.json)."""
    accepted = accepted or []
    if type_name == "SwitchParameter":
        return True if value is None else _to_bool(value)
    if type_name.endswith("[]"):
        items = value if isinstance(value, (list, tuple)) else [value]
        return [coerce(type_name[:-2], item, accepted) for item in items]
    if type_name == "String":
        if isinstance(value, (list, tuple)):
            return " ".join(str(v) for v in value)  # PowerShell joins an array with $OFS (a space)
        return str(value) if not isinstance(value, bool) else str(value)
    if type_name in INT_RANGES:
        return _to_int(value, type_name)
    converters = {"Boolean": _to_bool, "DateTime": _to_datetime, "TimeSpan": _to_timespan, "Guid": _to_guid}
    if type_name in converters:
        return converters[type_name](value)
    if accepted or hvdata.is_enum(type_name) or type_name == "ActionPreference":
        return _to_enum(type_name, value, accepted)
    return _to_object(type_name, value)
