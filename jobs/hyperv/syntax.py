"""The official syntax of the cmdlets hvbot sends: each parameter's type (scalar or array, switch, enum and its
members), parameter sets, mandatory flags and pipeline binding, and a check of built pipelines against it.

The data is the reference the project ships beside the lab (``lab/data/hyperv-cmdlets.json``, Microsoft's
published syntax; ``core-cmdlets.json`` for Select-Object; ``hyperv-types.json`` for enum members). It is read
as files, never imported as lab code, so ``jobs`` stays independent of the simulator.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jobs import units

DATA = Path(__file__).resolve().parents[2] / "lab" / "data"
NS = "Microsoft.HyperV.PowerShell."
# Parameter types that take a list as one value (PowerShell binds any object to them).
TAKES_ANYTHING = frozenset({"Object", "PSObject"})
# The Hyper-V module's base classes and the objects they accept from a pipeline.
SUBCLASSES = {"VirtualMachineBase": {"VirtualMachine", "VMSnapshot"},
              "VMNetworkAdapterBase": {"VMNetworkAdapter", "VMInternalNetworkAdapter"}}


def _read(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return data


@lru_cache(maxsize=1)
def reference() -> dict[str, Any]:
    """Cmdlet name -> syntax record (the ``cmdlets`` of hyperv-cmdlets.json, plus core-cmdlets.json's)."""
    return {**_read("hyperv-cmdlets.json")["cmdlets"], **_read("core-cmdlets.json")["cmdlets"]}


@lru_cache(maxsize=1)
def common_parameters() -> frozenset[str]:
    """-ErrorAction, -Verbose...: every cmdlet takes them, in every parameter set."""
    return frozenset(_read("hyperv-cmdlets.json")["common_parameters"])


@lru_cache(maxsize=1)
def _enums() -> dict[str, dict[str, int]]:
    enums: dict[str, dict[str, int]] = _read("hyperv-types.json")["enums"]
    return enums


@dataclass(frozen=True)
class ParamType:
    """One parameter's type as the reference writes it (``String[]``, ``SwitchParameter``, ``SnapshotType``)."""

    name: str
    type: str
    members: tuple[str, ...] = ()  # an enum's accepted names: the documented list, else all members

    @property
    def is_array(self) -> bool:
        return self.type.endswith("[]")

    @property
    def is_switch(self) -> bool:
        return self.type == "SwitchParameter"

    @property
    def element(self) -> str:
        return self.type[:-2] if self.is_array else self.type

    @property
    def takes_list(self) -> bool:
        """A list binds only to an array or Object/PSObject. (PowerShell would also join a list for an enum as
        "A,B"; hvbot never relies on that, so a list to a scalar enum counts as a mistake here.)"""
        return self.is_array or self.element in TAKES_ANYTHING


def param_type(cmdlet: str, name: str, cmdlets: Mapping[str, Any] | None = None) -> ParamType:
    """The type of ``-name`` of ``cmdlet``; KeyError when the reference lacks either."""
    if cmdlets is None:
        return _known_type(cmdlet, name)
    return _param_type(cmdlets[cmdlet]["parameters"][name], name)


@lru_cache(maxsize=None)
def _known_type(cmdlet: str, name: str) -> ParamType:
    return _param_type(reference()[cmdlet]["parameters"][name], name)


def _param_type(info: Mapping[str, Any], name: str) -> ParamType:
    type_name = str(info["type"])
    element = type_name.removesuffix("[]")
    enum = _enums().get(NS + element)
    members = tuple(info.get("accepted_values") or ()) or (tuple(sorted(enum, key=enum.__getitem__)) if enum else ())
    return ParamType(name, type_name, members)


def _short(type_name: str) -> str:
    return type_name.removeprefix(NS).removesuffix("[]")


def _accepts_object(param_type_name: str, kind: str) -> bool:
    base = _short(param_type_name)
    return base in TAKES_ANYTHING or base == kind or kind in SUBCLASSES.get(base, ())


def value_problems(cmdlet: str, p: ParamType, value: Any) -> list[str]:
    if p.is_switch:  # present (no value) or -Switch:$true / -Switch:$false
        return [] if value is None or isinstance(value, bool) else [f"{cmdlet}: switch -{p.name} takes no value"]
    if value is None:
        return [f"{cmdlet}: -{p.name} is {units.with_article(p.type)}; it is sent without a value"]
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if isinstance(value, (list, tuple)) and not p.takes_list:
        # PowerShell refuses a collection for a scalar parameter (CannotConvertArgument), even with one element.
        return [f"{cmdlet}: -{p.name} takes one {p.type}, but a list is sent"]
    if p.members:
        bad = [str(v) for v in values if str(v) not in p.members]
        if bad:
            return [f"{cmdlet}: -{p.name} {', '.join(bad)} is not one of {', '.join(p.members)}"]
    return []


def check_pipeline(commands: Sequence[tuple[str, Sequence[tuple[str, Any]]]],
                   cmdlets: Mapping[str, Any] | None = None) -> list[str]:
    """Problems of one pipeline, ``[(cmdlet, [(parameter, value)...])...]`` as sent (a switch's value is None),
    against the reference (empty = valid): the cmdlet exists; each parameter exists and its value fits (no
    list to a scalar, enum values are members); the named parameters, plus the one a piped object binds to by
    value, lie together in one parameter set whose mandatory parameters are all present."""
    ref = cmdlets if cmdlets is not None else reference()
    problems: list[str] = []
    upstream: list[str] = []  # classes the previous command writes
    for cmdlet, params in commands:
        doc = ref.get(cmdlet)
        if doc is None:
            problems.append(f"{cmdlet}: not in the reference")
            upstream = []
            continue
        names = [n for n, _ in params if n not in common_parameters()]
        for name, value in params:
            if name in common_parameters():
                continue
            if name not in doc["parameters"]:
                problems.append(f"{cmdlet}: parameter -{name} not in the reference")
                continue
            problems.extend(value_problems(cmdlet, param_type(cmdlet, name, ref), value))
        if not _fits_a_set(doc, set(names), upstream):
            shown = " ".join("-" + n for n in names) or "(no parameters)"
            piped = f" with {'/'.join(upstream)} piped in" if upstream else ""
            problems.append(f"{cmdlet} {shown}{piped}: no parameter set takes these with all its mandatory "
                            "parameters present")
        upstream = [_short(t) for t in doc.get("output_types", []) if t != "None" and " " not in t]
    return problems


def _fits_a_set(doc: Mapping[str, Any], names: set[str], upstream: list[str]) -> bool:
    params: Mapping[str, Any] = doc["parameters"]
    for set_name, members in doc["parameter_sets"].items():
        if not names <= set(members):
            continue
        supplied = set(names)
        if upstream:
            by_value = [n for n in members if n not in names and "ByValue" in str(params[n]["pipeline"])
                        and any(_accepts_object(params[n]["type"], kind) for kind in upstream)]
            if not by_value:
                continue
            supplied.add(by_value[0])
        mandatory = {n for n in members if params.get(n, {}).get("sets", {}).get(set_name, {}).get("required")}
        if mandatory <= supplied:
            return True
    return False
