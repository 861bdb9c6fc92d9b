"""``Select-Object -Property`` on the lab: ``Get-VM | Select-Object -Property Id,Name,State``.

What PowerShell writes for it (hyperv.md §5.1): a PSCustomObject whose first type name is ``Selected.`` plus
the source object's type, the chosen properties as note properties (CLIXML ``<MS>``) holding the source
values (enums stay enums), and a property that the source lacks as a null note property. On a JEA endpoint
(RestrictedRemoteServer) Select-Object is the restricted proxy: -Property accepts only 11 names, anything
else fails binding with ValidateSet's message (hyperv.md §6.2). The lab simulates -Property (names and
wildcards) and -InputObject; other Select-Object parameters are refused with a clear error.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from psrpcore.types import ErrorCategory, PSObject

from lab import hvdata
from lab.binding import BindingError, Bound
from lab.clixml import render_selected
from lab.cmdlet_context import Context, HandlerTable, Terminate
from lab.cmdlets_read import WILDCARD, matches
from lab.engine import error_record
from lab.errors import binding_record
from lab.hvobjects import Live, live_values
from lab.serialize import NS, _note, converter_for

CMDLET = "Select-Object"
SIMULATED = {"Property", "InputObject"}
CUSTOM_TAIL = ("System.Management.Automation.PSCustomObject", "System.Object")


class SelectedOutput:
    """One Select-Object output object; renders itself for the fast path like ``lab.clixml.HyperVOutput``."""

    __slots__ = ("type_names", "props", "values")

    def __init__(self, source_class: str, props: list[tuple[str, str | None]], values: dict[str, Any]) -> None:
        self.type_names = ("Selected." + NS + source_class,) + CUSTOM_TAIL
        self.props = props  # [(name, .NET type or None)]
        self.values = values

    def to_string(self) -> str:
        # PSCustomObject.ToString(): "@{Name=vm1; State=Running}"; an array shows its type name, "System.String[]"
        # (UNCONFIRMED for every value type; nothing in hvbot reads it).
        return "@{" + "; ".join(f"{n}={_text(self.values.get(n), t)}" for n, t in self.props) + "}"

    def to_clixml(self) -> bytes:
        return render_selected(self.type_names, self.props, self.values, self.to_string())

    def to_psobject(self) -> PSObject:
        """The same object as a psrpcore PSObject (the reference ``to_clixml`` is tested against)."""
        obj = PSObject()
        meta = obj.PSObject
        meta.type_names = list(self.type_names)
        meta.extended_properties = [_note(n, converter_for(t)(self.values.get(n)) if t else None)
                                    for n, t in self.props]
        meta.to_string = self.to_string()
        return obj

    @classmethod
    def ToPSObjectForRemoting(cls, value: SelectedOutput, **_: Any) -> PSObject:  # noqa: N802 (psrpcore's name)
        return value.to_psobject()


def _text(value: Any, type_name: str | None) -> str:
    if value is None:
        return ""
    return (type_name or "System.Object[]") if isinstance(value, list) else str(value)


@lru_cache(maxsize=1024)
def _chosen(source_class: str, patterns: tuple[str, ...]) -> tuple[tuple[str, str | None], ...]:
    return tuple(chosen_properties(source_class, list(patterns)))


def chosen_properties(source_class: str, patterns: list[str]) -> list[tuple[str, str | None]]:
    """[(property, .NET type)] in -Property order; wildcards expand in class order; unknown names stay, typeless."""
    known = hvdata.class_properties(source_class)
    chosen: list[tuple[str, str | None]] = []
    for pattern in patterns:
        found: list[tuple[str, str | None]]
        if WILDCARD.search(pattern):
            found = [(n, t) for n, t in known.items() if matches(pattern, n)]
        else:
            exact = next((n for n in known if n.lower() == pattern.lower()), None)
            found = [(exact, known[exact])] if exact else [(pattern, None)]
        chosen.extend(p for p in found if p[0] not in {c[0] for c in chosen})
    return chosen


def restricted_refusal(patterns: list[str]) -> BindingError | None:
    """JEA's proxy: the first -Property value outside its ValidateSet, as PowerShell's binding error."""
    allowed = hvdata.restricted_select_properties()
    bad = next((p for p in patterns if p not in allowed), None)
    if bad is None:
        return None
    return BindingError(
        CMDLET, f"Cannot validate argument on parameter 'Property'. The argument \"{bad}\" does not belong to the set "
                f"\"{','.join(allowed)}\" specified by the ValidateSet attribute. Supply an argument that is in the "
                "set and then try the command again.", "ParameterArgumentValidationError",
        exception_type="System.Management.Automation.ParameterBindingValidationException", category="InvalidData")


def select_object(ctx: Context, bound: Bound, item: Any) -> list[Any]:
    patterns = [str(p) for p in (bound.get("Property") or [])]
    if ctx.restricted:
        refusal = restricted_refusal(patterns)
        if refusal is not None:
            raise Terminate(binding_record(refusal))
    unsupported = sorted(set(bound.params) & set(hvdata.cmdlets()[CMDLET]["parameters"]) - SIMULATED)
    if unsupported or not patterns or not isinstance(item, Live):
        what = (f"-{', -'.join(unsupported)}" if unsupported else "input other than Hyper-V objects"
                if patterns else "Select-Object without -Property")
        raise Terminate(error_record(f"The lab does not simulate {what} (it simulates Select-Object -Property "
                                     "on Hyper-V objects).", "LabNotSimulated", ErrorCategory.NotImplemented,
                                     exception_type="System.NotSupportedException", activity=CMDLET))
    props = list(_chosen(item.ps_kind, tuple(patterns)))  # the same for every piped object of a class
    values = live_values(item, ctx.fleet.clock())
    return [SelectedOutput(item.ps_kind, props, {n: values.get(n) for n, _ in props})]


HANDLERS: HandlerTable = {CMDLET: (select_object, None)}
