"""Model -> psrpcore objects that travel like live Hyper-V objects (hyperv.md §2, §5).

Each object carries the real type name (plus a base chain ending in ``System.Object``) and every property of
its class in ``hyperv-types.json`` as an adapted property of the declared .NET type: enums as PowerShell enums
(name + I32), DateTime as ``DT``, TimeSpan as ``TS``, Int64/UInt32/UInt64 with their own tags, String[] as a
typed list. Nested Hyper-V objects arrive as their ToString text (serialization depth 1, §5.2). Properties the
model does not know are null. Per-class converter lists are cached. Pipelines do not send these objects:
they send ``lab.clixml.HyperVOutput``, which writes the same bytes ~30x faster; this module is its reference.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Callable

from psrpcore.types import (
    PSDateTime,
    PSEnumBase,
    PSInt64,
    PSList,
    PSNoteProperty,
    PSObject,
    PSType,
    PSUInt,
    PSUInt64,
    PSVersion,
)

from lab import hvdata
from lab.clock import dotnet_ticks_digit

NS = hvdata.NS
# Base chains of the Hyper-V module's classes (inference from the decompiled module; not in the stub).
BASES: dict[str, list[str]] = {
    "VirtualMachine": ["VirtualMachineBase", "VirtualizationObject"],
    "VMSnapshot": ["VirtualMachineBase", "VirtualizationObject"],
    "VMNetworkAdapter": ["VMNetworkAdapterBase", "VMDevice", "VirtualizationObject"],
    "VMInternalNetworkAdapter": ["VMNetworkAdapterBase", "VMDevice", "VirtualizationObject"],
    "VMMemory": ["VMDevice", "VirtualizationObject"],
    "VMReplication": ["VMReplicationBase", "VirtualizationObject"],
    "VMReplicationHealth": ["VMReplicationBase", "VirtualizationObject"],
    "VMHost": ["VirtualizationObject"],
}
Converter = Callable[[Any], Any]


@lru_cache(maxsize=None)
def enum_class(enum_name: str) -> type[PSEnumBase]:
    """A psrpcore enum type for a Hyper-V enum: serializes as name (ToString) + I32 with its type names."""
    full = enum_name if "." in enum_name else NS + enum_name
    members = hvdata.enum_members(full)
    cls = PSEnumBase(full.rsplit(".", 1)[-1].replace("+", "_"), members)  # type: ignore[call-overload]
    cls = PSType([full], rehydrate=False)(cls)
    type.__setattr__(cls, "__getattribute__", object.__getattribute__)  # see HyperVObject
    return cls  # type: ignore[no-any-return]


@lru_cache(maxsize=None)
def list_class(type_names: tuple[str, ...]) -> type[PSList]:
    cls = type("TypedList", (PSList,), {"__getattribute__": object.__getattribute__})
    return PSType(list(type_names), skip_inheritance=True, rehydrate=False)(cls)  # type: ignore[no-any-return]


def round_trip(value: datetime) -> PSDateTime:
    """A DateTime as Windows writes it: 7 fraction digits (``.9270288``) and the offset of its zone (values from
    ``lab.hvobjects.live_values`` carry the host's). psrpcore writes a PSDateTime's nanoseconds as the 7th digit."""
    return PSDateTime(value, nanosecond=dotnet_ticks_digit(value) * 100)


def _string_array(value: Any) -> Any:
    if value is None:
        return None
    return list_class(("System.String[]", "System.Array", "System.Object"))([str(v) for v in value])


def _text(value: Any) -> Any:
    """A nested object at depth 1: its ToString text (a list keeps one string per element)."""
    if value is None:
        return None
    if isinstance(value, list):
        return list_class(("System.Collections.ArrayList", "System.Object"))([str(v) for v in value])
    return str(value)


def _nullable(inner: Converter) -> Converter:
    return lambda v: None if v is None else inner(v)


def _enum_converter(enum_name: str) -> Converter:
    cls = enum_class(enum_name)
    return lambda v: None if v is None else cls[v] if isinstance(v, str) else cls(v)


def _enum_list_converter(enum_name: str, type_name: str) -> Converter:
    one = _enum_converter(enum_name)
    names = (type_name, "System.Array", "System.Object")
    return lambda v: None if v is None else list_class(names)([one(x) for x in v])


SIMPLE: dict[str, Converter] = {
    "System.String": lambda v: None if v is None else str(v),
    "System.Boolean": lambda v: bool(v) if v is not None else False,
    "System.Int32": lambda v: int(v or 0),
    "System.Int64": lambda v: PSInt64(int(v or 0)),
    "System.UInt32": lambda v: PSUInt(int(v or 0)),
    "System.UInt64": lambda v: PSUInt64(int(v or 0)),
    "System.Guid": lambda v: v if isinstance(v, uuid.UUID) or v is None else uuid.UUID(str(v)),
    "System.DateTime": lambda v: None if v is None else round_trip(v if isinstance(v, datetime)
                                                                    else datetime.fromisoformat(v)),
    "System.TimeSpan": lambda v: v if isinstance(v, timedelta) or v is None else timedelta(seconds=float(v)),
    "System.String[]": _string_array,
    "System.Version": lambda v: None if v is None else PSVersion(str(v)),
}


def converter_for(type_name: str) -> Converter:
    if type_name in SIMPLE:
        return SIMPLE[type_name]
    if type_name.startswith("System.Nullable<"):
        inner = type_name[len("System.Nullable<"):-1]
        return _nullable(converter_for(inner))
    if type_name.endswith("[]") and hvdata.is_enum(type_name[:-2]):
        return _enum_list_converter(type_name[:-2], type_name)
    if hvdata.is_enum(type_name):
        return _enum_converter(type_name)
    return _text


@lru_cache(maxsize=None)
def class_plan(class_name: str) -> tuple[list[str], list[tuple[str, Converter]]]:
    """(type names, [(property, converter)]) for a Hyper-V class, computed once."""
    props = hvdata.class_properties(class_name)
    names = [NS + class_name] + [NS + b for b in BASES.get(class_name, [])] + ["System.Object"]
    return names, [(name, converter_for(type_name)) for name, type_name in props.items()]


def _note(name: str, value: Any) -> PSNoteProperty:
    # PSNoteProperty(name, value) builds a throwaway PSObject per call; set the slot directly instead.
    prop = PSNoteProperty(name)
    prop._value = value
    return prop


class HyperVObject(PSObject):
    """A PSObject with plain attribute access: psrpcore's property-aware lookup scans every property on each
    attribute read, which made serializing 70-property objects ~10x slower. Read properties with ``obj[name]``."""

    __getattribute__ = object.__getattribute__
    __setattr__ = object.__setattr__

    def __getitem__(self, name: str) -> Any:
        for prop in self.PSObject.adapted_properties:
            if prop.name == name:
                return prop.get_value(self)
        raise KeyError(name)


def build(class_name: str, values: dict[str, Any], to_string: str | None = None) -> PSObject:
    """A PSObject of ``class_name`` with every class property (unknown ones null)."""
    type_names, plan = class_plan(class_name)
    obj = HyperVObject()
    meta = obj.PSObject
    meta.type_names = list(type_names)
    meta.adapted_properties = [_note(name, conv(values.get(name))) for name, conv in plan]
    if to_string is not None:
        meta.to_string = to_string
    return obj
