"""Argument type conversion as PowerShell's binder does it, for the parameter types of the Hyper-V reference.

Each rule names its source: a section of ``powershell-binding.md`` (the facts the lab imitates, read from the
PowerShell engine: ``PBB`` = ParameterBinderBase.cs, ``LP`` = LanguagePrimitives.cs). Messages are Windows
PowerShell 5.1's. Where the source is silent the lab takes the stricter choice; ``lab/README.md`` lists those.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from lab import hvdata

BINDING_EXCEPTION = "System.Management.Automation.ParameterBindingException"
VALIDATION_EXCEPTION = "System.Management.Automation.ParameterBindingValidationException"
SYSTEM_TYPES = {"String", "Int32", "Int64", "UInt32", "Boolean", "DateTime", "TimeSpan", "Guid", "Object"}
INT_RANGES = {"Int32": (-(2**31), 2**31 - 1), "Int64": (-(2**63), 2**63 - 1), "UInt32": (0, 2**32 - 1)}
TIMESPAN_RE = re.compile(r"^(-)?(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?$")
# ActionPreference in value order (System.Management.Automation.ActionPreference; Break is PowerShell 7's).
ACTION_PREFERENCE = {"SilentlyContinue": 0, "Stop": 1, "Continue": 2, "Inquire": 3, "Ignore": 4, "Suspend": 5,
                     "Break": 6}
# Parameter types a collection may be bound to as one value [source: §1, PBB#CoerceTypeAsNeeded].
TAKES_ANYTHING = {"Object", "PSObject"}
# Objects a parameter of a base class accepts (the Hyper-V module's class hierarchy, hyperv-types.json).
SUBCLASSES = {"VirtualMachineBase": {"VirtualMachine", "VMSnapshot"},
              "VMNetworkAdapterBase": {"VMNetworkAdapter", "VMInternalNetworkAdapter"}}
NOT_SUPPORTED = "Specified method is not supported."


class CoercionError(Exception):
    """A conversion the binder refuses: the full message, error id, exception type and category."""

    def __init__(self, message: str, error_id: str = "CannotConvertArgumentNoMessage",
                 exception_type: str = BINDING_EXCEPTION, category: str = "InvalidArgument") -> None:
        super().__init__(message)
        self.message = message
        self.error_id = error_id
        self.exception_type = exception_type
        self.category = category


def dotnet_type(type_name: str) -> str:
    """The full .NET name PowerShell prints for a parameter type."""
    base, array = (type_name[:-2], "[]") if type_name.endswith("[]") else (type_name, "")
    if base in ("ActionPreference", "SwitchParameter", "PSObject"):
        return f"System.Management.Automation.{base}{array}"
    if base in SYSTEM_TYPES:
        return f"System.{base}{array}"
    if base == "CimSession":
        return f"Microsoft.Management.Infrastructure.CimSession{array}"
    if base == "PSCredential":
        return f"System.Management.Automation.PSCredential{array}"
    return f"{hvdata.NS}{base}{array}"


def is_collection(value: Any) -> bool:
    """An IList on the wire: pypsrp sends a Python list or tuple as ``<LST>`` (powershell-binding.md §0)."""
    return isinstance(value, (list, tuple))


def shown_collection(value: Any) -> str:
    """``{6}`` of CannotConvertArgument for a list [source: §1]. The reference leaves the text for a list
    deserialized from the wire open (its ``<ToString>``, else the elements joined by a space); pypsrp sends no
    ``<ToString>``, and the lab prints ``System.Object[]``, the text reported for a real host (lab/README.md)."""
    return "System.Object[]"


def _cannot_convert(parameter: str, type_name: str, shown: str, reason: str) -> CoercionError:
    # PBS CannotConvertArgument: "Cannot convert '{6}' to the type '{2}' required by parameter '{1}'. {7}" [§1]
    return CoercionError(f"Cannot convert '{shown}' to the type '{dotnet_type(type_name)}' required by parameter "
                         f"'{parameter}'. {reason}", "CannotConvertArgument")


def _no_message(parameter: str, inner: str) -> CoercionError:
    # PBS CannotConvertArgumentNoMessage: "Cannot bind parameter '{1}'. {6}" [§3]
    return CoercionError(f"Cannot bind parameter '{parameter}'. {inner}")


def _invalid_cast(parameter: str, value: Any, type_name: str, reason: str) -> CoercionError:
    # ExtendedTypeSystem: 'Cannot convert value "{0}" to type "{1}". Error: "{2}"' [§3, LP#GetInvalidCastMessages]
    return _no_message(parameter, f"Cannot convert value \"{value}\" to type \"{dotnet_type(type_name)}\". "
                                  f"Error: \"{reason}\"")


def _to_int(parameter: str, value: Any, type_name: str) -> int:
    # [§3, LP#ConvertStringToInteger]: "" is 0; "1.5" goes through double and rounds; 5.1 rejects "1GB".
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        try:
            number = 0 if text == "" else int(text, 16) if text.lower().startswith("0x") else int(text)
        except ValueError:
            try:
                number = round(float(text))
            except ValueError:
                raise _invalid_cast(parameter, value, type_name, "Input string was not in a correct format.") from None
    low, high = INT_RANGES[type_name]
    if not low <= number <= high:
        raise _invalid_cast(parameter, value, type_name, f"Value was either too large or too small for an "
                                                         f"{type_name}.")
    return number


def _to_bool(parameter: str, value: Any, type_name: str) -> bool:
    # [§4, PBB#CoerceTypeAsNeeded]: only bool, SwitchParameter and numbers (0 is false); anything else, even
    # "true", is CannotConvertArgument naming the value's type, with an empty {7} (so the text ends in a space).
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    shown = "System.String" if isinstance(value, str) else (
        "System.Object[]" if is_collection(value) else f"System.{type(value).__name__}")
    raise _cannot_convert(parameter, type_name, shown, "")


def _to_datetime(parameter: str, value: Any) -> datetime:
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
    raise _invalid_cast(parameter, value, "DateTime", "String was not recognized as a valid DateTime.")


def _to_timespan(parameter: str, value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return timedelta(microseconds=value / 10)  # an integer converts as ticks (100 ns)
    match = TIMESPAN_RE.match(str(value).strip())
    if not match:
        raise _invalid_cast(parameter, value, "TimeSpan", "String was not recognized as a valid TimeSpan.")
    sign, days, hours, minutes, seconds, fraction = match.groups()
    span = timedelta(days=int(days or 0), hours=int(hours), minutes=int(minutes), seconds=int(seconds or 0),
                     microseconds=int((fraction or "0").ljust(7, "0")[:6]))
    return -span if sign else span


def _to_guid(parameter: str, value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise _invalid_cast(parameter, value, "Guid", "Guid should contain 32 digits with 4 dashes "
                                                      "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).") from None


def enum_members(type_name: str, accepted: list[str]) -> dict[str, int]:
    """Member -> value, in value order: the Hyper-V enum, ActionPreference, or (a type the stub lacks, e.g.
    GuestIsolationType) the documented accepted values, numbered in their order."""
    if type_name == "ActionPreference":
        members = ACTION_PREFERENCE
    elif hvdata.is_enum(type_name):
        members = hvdata.enum_members(type_name)
    else:
        members = {name: i for i, name in enumerate(accepted)}
    return dict(sorted(members.items(), key=lambda kv: kv[1]))


def is_enum_type(type_name: str, accepted: list[str]) -> bool:
    base = type_name[:-2] if type_name.endswith("[]") else type_name
    return base == "ActionPreference" or hvdata.is_enum(base) or (bool(accepted) and base not in SYSTEM_TYPES)


def _enum_by_name(parameter: str, type_name: str, text: str, members: dict[str, int]) -> int:
    # [§3, SMA/engine/EnumMinimumDisambiguation.cs]: exact, then ignoring case, then a unique prefix.
    if text in members:
        return members[text]
    folded = [n for n in members if n.lower() == text.lower()]
    if folded:
        return members[folded[0]]
    prefixed = [n for n in members if n.lower().startswith(text.lower())] if text else []
    if len(prefixed) == 1:
        return members[prefixed[0]]
    if prefixed:
        # MultipleEnumNameMatch: the reference names the resource but not its text; this is the lab's wording.
        inner = (f"The identifier name {text} cannot be processed due to the inability to differentiate between the "
                 f"following enumerator names: {', '.join(prefixed)}. Try a more specific identifier name.")
    else:
        # EnumExpressionEvaluatorStrings NoEnumNameMatch: names in value order, after a line break [§3].
        inner = ("Unable to match the identifier name " + text + " to a valid enumerator name. Specify one of the "
                 "following enumerator names and try again:\r\n" + ", ".join(members))
    raise _invalid_cast(parameter, text, type_name, inner)


def _to_enum(parameter: str, type_name: str, value: Any, accepted: list[str]) -> str:
    members = enum_members(type_name, accepted)
    names_by_value = {v: n for n, v in reversed(members.items())}  # the first name of a value wins
    if isinstance(value, bool) or not isinstance(value, (int, str)) and not is_collection(value):
        value = str(value)
    if isinstance(value, int):
        number = value
    else:
        # A list is joined as "A,B" and parsed as one string [§1, LP#ConvertEnumerableToEnum]; "A,B" ORs the
        # members, and a bare number is parsed as a value [§3].
        text = ",".join(str(v) for v in value) if is_collection(value) else value.strip()
        number = 0
        for part in text.split(","):
            part = part.strip()
            number |= int(part) if re.fullmatch(r"-?\d+", part) else _enum_by_name(parameter, type_name, part, members)
    if number not in names_by_value:
        # [§3, LP#ThrowForUndefinedEnum]: a non-[Flags] enum needs the value (or the OR) to be defined.
        shown = ",".join(str(v) for v in value) if is_collection(value) else value
        raise _no_message(parameter, f"Cannot convert value \"{shown}\" to type \"{dotnet_type(type_name)}\" due to "
                                     "enumeration values that are not valid. Specify one of the following enumeration "
                                     "values and try again. The possible enumeration values are "
                                     f"\"{','.join(members)}\".")
    name = names_by_value[number]
    if accepted and name not in accepted:
        # A documented "Accepted values" list narrower than the enum (New-VMSwitch -SwitchType): the reference does
        # not say whether the cmdlet checks it; the lab refuses, the stricter choice, as ValidateSet words it [§7].
        raise validate_set_error(parameter, name, accepted)
    return name


def validate_set_error(parameter: str, value: Any, accepted: list[str]) -> CoercionError:
    # PBS ParameterArgumentValidationError + Metadata ValidateSetFailure, values joined by "," [§7].
    return CoercionError(f"Cannot validate argument on parameter '{parameter}'. The argument \"{value}\" does not "
                         f"belong to the set \"{','.join(accepted)}\" specified by the ValidateSet attribute. Supply an "
                         "argument that is in the set and then try the command again.",
                         "ParameterArgumentValidationError", VALIDATION_EXCEPTION, "InvalidData")


def _to_object(parameter: str, type_name: str, value: Any) -> Any:
    """A Hyper-V object parameter: only the lab's own pipeline objects (``Live``) of the right class bind."""
    kind = getattr(value, "ps_kind", None)
    if type_name in TAKES_ANYTHING or type_name in ("CimSession", "PSCredential"):
        return value
    if kind is not None and (kind == type_name or kind in SUBCLASSES.get(type_name, ())):
        return value
    shown_type = "System.String" if isinstance(value, str) else (kind or type(value).__name__)
    # No conversion path: ExtendedTypeSystem's 'Cannot convert the "{0}" value of type "{1}" to type "{2}".' [§3]
    raise CoercionError(f"Cannot bind parameter '{parameter}'. Cannot convert the \"{value}\" value of type "
                        f"\"{shown_type}\" to type \"{dotnet_type(type_name)}\".", "CannotConvertArgument")


def _scalar(parameter: str, type_name: str, value: Any, accepted: list[str]) -> Any:
    if type_name == "String":
        return value if isinstance(value, str) else str(value)
    if type_name in INT_RANGES:
        return _to_int(parameter, value, type_name)
    if type_name == "Boolean":
        return _to_bool(parameter, value, type_name)
    if type_name == "DateTime":
        return _to_datetime(parameter, value)
    if type_name == "TimeSpan":
        return _to_timespan(parameter, value)
    if type_name == "Guid":
        return _to_guid(parameter, value)
    if is_enum_type(type_name, accepted):
        return _to_enum(parameter, type_name, value, accepted)
    return _to_object(parameter, type_name, value)


def coerce(type_name: str, value: Any, accepted: list[str] | None = None, parameter: str = "") -> Any:
    """Convert ``value`` for the parameter ``parameter`` of ``type_name`` (as written in hyperv-cmdlets.json).

    ``value`` is never ``None`` here: the binder handles ``$null`` first (powershell-binding.md §4, §7).
    """
    accepted = list(accepted or [])
    if type_name == "SwitchParameter":
        return _to_bool(parameter, value, type_name)  # [§4]
    if type_name.endswith("[]"):
        # A scalar becomes a one-element array; each element is converted by the scalar rules, so a nested list
        # fails as a list to a scalar does [§2, PBB#EncodeCollection].
        element = type_name[:-2]
        items = list(value) if is_collection(value) else [value]
        return [_element(parameter, element, item, accepted) for item in items]
    if is_collection(value) and type_name not in TAKES_ANYTHING and not is_enum_type(type_name, accepted):
        # A collection to a scalar parameter, even with one element [§1, PBB#CoerceTypeAsNeeded, PBB#GetIList].
        if type_name == "Boolean":
            return _to_bool(parameter, value, type_name)
        raise _cannot_convert(parameter, type_name, shown_collection(value), NOT_SUPPORTED)
    return _scalar(parameter, type_name, value, accepted)


def _element(parameter: str, element: str, item: Any, accepted: list[str]) -> Any:
    if item is None:
        return None
    if is_collection(item) and element not in TAKES_ANYTHING:
        raise _cannot_convert(parameter, element, shown_collection(item), NOT_SUPPORTED)
    return _scalar(parameter, element, item, accepted)
