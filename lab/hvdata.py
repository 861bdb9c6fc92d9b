"""The Hyper-V reference data the lab ships: cmdlet syntax and .NET classes/enums, loaded once.

``hyperv-cmdlets.json`` (official syntax) and ``core-cmdlets.json`` (Select-Object) drive parameter binding;
``hyperv-types.json`` (classes and enums of the real module) drives serialization and enum validation. All are
read lazily and cached.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

NS = "Microsoft.HyperV.PowerShell."


@lru_cache(maxsize=None)
def _load(name: str) -> dict[str, Any]:
    text = resources.files("lab").joinpath("data", name).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@lru_cache(maxsize=None)
def cmdlets() -> dict[str, Any]:
    """Cmdlet name -> its syntax record (parameter sets, parameters, default set...): the Hyper-V module's,
    plus the core cmdlets hvbot sends (``core-cmdlets.json``, our own transcription: Select-Object)."""
    return {**_load("hyperv-cmdlets.json")["cmdlets"], **_load("core-cmdlets.json")["cmdlets"]}


def restricted_select_properties() -> list[str]:
    """The only -Property values JEA's restricted Select-Object proxy accepts (hyperv.md §6.2)."""
    result: list[str] = _load("core-cmdlets.json")["restricted_properties"]
    return result


def common_parameters() -> list[str]:
    result: list[str] = _load("hyperv-cmdlets.json")["common_parameters"]
    return result


def class_properties(class_name: str) -> dict[str, str]:
    """Property name -> .NET type name for a Hyper-V class (short name or full name)."""
    full = class_name if "." in class_name else NS + class_name
    result: dict[str, str] = _load("hyperv-types.json")["classes"][full]["properties"]
    return result


def enum_members(enum_name: str) -> dict[str, int]:
    """Member name -> integer for a Hyper-V enum (short name or full name)."""
    full = enum_name if "." in enum_name else NS + enum_name
    result: dict[str, int] = _load("hyperv-types.json")["enums"][full]
    return result


def is_enum(type_name: str) -> bool:
    full = type_name if "." in type_name else NS + type_name
    return full in _load("hyperv-types.json")["enums"]


def enum_name_for(enum_name: str, value: str) -> str:
    """The canonical member name for ``value`` (case-insensitive); ValueError if it is not a member."""
    for member in enum_members(enum_name):
        if member.lower() == value.lower():
            return member
    raise ValueError(f"{value!r} is not a member of {enum_name}")
