"""PowerShell parameter binding for the lab's cmdlets, driven by ``lab/data/hyperv-cmdlets.json``.

Follows PowerShell's binder: named parameters by full name, alias or unambiguous prefix (case-insensitive);
positional arguments by position within the candidate parameter sets; switches; the common parameters;
pipeline input ByValue; parameter-set resolution (sets holding every bound parameter, all mandatory ones
present, the default set on ties); type coercion. Failures raise ``BindingError`` with PowerShell's
wording and FullyQualifiedErrorId (Windows PowerShell 5.1 texts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lab import hvdata
from lab.coerce import CoercionError, coerce, dotnet_type

ACTION_PREFERENCE = ["SilentlyContinue", "Stop", "Continue", "Inquire", "Ignore", "Suspend", "Break"]
COMMON: dict[str, tuple[str, list[str]]] = {  # name -> (type, aliases), about_CommonParameters
    "Verbose": ("SwitchParameter", ["vb"]), "Debug": ("SwitchParameter", ["db"]),
    "ErrorAction": ("ActionPreference", ["ea"]), "WarningAction": ("ActionPreference", ["wa"]),
    "InformationAction": ("ActionPreference", ["infa"]), "ProgressAction": ("ActionPreference", ["proga"]),
    "ErrorVariable": ("String", ["ev"]), "WarningVariable": ("String", ["wv"]),
    "InformationVariable": ("String", ["iv"]), "OutVariable": ("String", ["ov"]),
    "OutBuffer": ("Int32", ["ob"]), "PipelineVariable": ("String", ["pv"]),
}
BINDING_EXCEPTION = "System.Management.Automation.ParameterBindingException"


def command_class(cmdlet: str) -> str:
    """``Get-VMNetworkAdapter`` -> ``Microsoft.HyperV.PowerShell.Commands.GetVMNetworkAdapterCommand`` (the form
    of hyperv.md §5.4's ``...ResetVMReplicationStatisticsCommand``); a core cmdlet's own class from its record
    (``Select-Object`` -> ``Microsoft.PowerShell.Commands.SelectObjectCommand``)."""
    known = hvdata.cmdlets().get(cmdlet, {}).get("command_class")
    return str(known) if known else "Microsoft.HyperV.PowerShell.Commands." + cmdlet.replace("-", "") + "Command"


class BindingError(Exception):
    """A parameter binding failure: PowerShell's message, error id and exception type."""

    def __init__(self, cmdlet: str, message: str, error_id: str,
                 exception_type: str = BINDING_EXCEPTION, target: Any = None) -> None:
        super().__init__(message)
        self.cmdlet = cmdlet
        self.message = message
        self.error_id = error_id
        self.exception_type = exception_type
        self.target = target
        self.category = "InvalidArgument"

    @property
    def fq_error_id(self) -> str:
        return f"{self.error_id},{command_class(self.cmdlet)}"


@dataclass
class Bound:
    cmdlet: str
    parameter_set: str
    params: dict[str, Any] = field(default_factory=dict)
    pipeline_param: str | None = None  # the parameter that takes each pipeline input object

    def get(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)


def _base(type_name: str) -> str:
    return type_name[:-2] if type_name.endswith("[]") else type_name


def _accepts_kind(type_name: str, kind: str) -> bool:
    base = _base(type_name)
    if base in ("PSObject", "Object"):
        return True  # Select-Object -InputObject takes anything
    if base == "VirtualMachineBase":
        return kind in ("VirtualMachine", "VMSnapshot")
    if base == "VMNetworkAdapterBase":
        return kind in ("VMNetworkAdapter", "VMInternalNetworkAdapter")
    return base == kind


class Binder:
    """Binds one cmdlet's parameters. Instances are cheap; the reference data is cached."""

    def __init__(self, cmdlet: str) -> None:
        self.cmdlet = cmdlet
        self.spec = hvdata.cmdlets()[cmdlet]
        self.params: dict[str, dict[str, Any]] = self.spec["parameters"]
        self.sets: dict[str, list[str]] = self.spec["parameter_sets"]
        self.default_set: str | None = self.spec["default_parameter_set"]

    def error(self, message: str, error_id: str, **kw: Any) -> BindingError:
        return BindingError(self.cmdlet, message, error_id, **kw)

    # --- names -----------------------------------------------------------------------------------------
    def _type_of(self, name: str) -> str:
        return self.params[name]["type"] if name in self.params else COMMON[name][0]

    def resolve_name(self, given: str) -> str:
        table = {n: [n] + list(p["aliases"]) for n, p in self.params.items()}
        table.update({n: [n] + aliases for n, (_, aliases) in COMMON.items()})
        low = given.lower()
        exact = [n for n, names in table.items() if low in (x.lower() for x in names)]
        if exact:
            return exact[0]
        matches = [n for n, names in table.items() if any(x.lower().startswith(low) for x in names)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            listed = " ".join("-" + m for m in matches)
            raise self.error(f"Parameter cannot be processed because the parameter name '{given}' is ambiguous. "
                             f"Possible matches include: {listed}.", "AmbiguousParameter")
        raise self.error(f"A parameter cannot be found that matches parameter name '{given}'.",
                         "NamedParameterNotFound")

    def _coerce(self, name: str, value: Any) -> Any:
        type_name = self._type_of(name)
        accepted = self.params[name]["accepted_values"] if name in self.params else (
            ACTION_PREFERENCE if type_name == "ActionPreference" else [])
        if value is None and type_name != "SwitchParameter":
            raise self.error(f"Missing an argument for parameter '{name}'. Specify a parameter of type "
                             f"'{dotnet_type(type_name)}' and try again.", "MissingArgument")
        try:
            return coerce(type_name, value, accepted)
        except CoercionError as exc:
            if exc.kind == "validateset":
                raise self.error(
                    f"Cannot validate argument on parameter '{name}'. The argument \"{value}\" does not belong to "
                    f"the set \"{','.join(accepted)}\" specified by the ValidateSet attribute. Supply an argument "
                    "that is in the set and then try the command again.", "ParameterArgumentValidationError",
                    exception_type="System.Management.Automation.ParameterBindingValidationException") from None
            if exc.kind == "boolean":
                raise self.error(
                    f"Cannot process argument transformation on parameter '{name}'. Cannot convert value "
                    f"\"{exc.shown}\" to type \"System.Boolean\". Boolean parameters accept only Boolean values "
                    "and numbers, such as $True, $False, 1 or 0.", "ParameterArgumentTransformationError",
                    exception_type="System.Management.Automation.ParameterBindingArgumentTransformationException",
                ) from None
            raise self.error(f"Cannot bind parameter '{name}'. {exc}", exc.error_id, target=value) from None

    # --- sets ------------------------------------------------------------------------------------------
    def _sets_of(self, name: str) -> set[str]:
        if name not in self.params:
            return set(self.sets)  # common parameters belong to every set
        return set(self.params[name]["sets"]) & set(self.sets)

    def _ordered(self, sets: set[str]) -> list[str]:
        return sorted(sets, key=lambda s: (s != self.default_set, list(self.sets).index(s)))

    def _positional(self, set_name: str, bound: dict[str, Any], args: list[Any]) -> dict[str, Any] | None:
        slots = sorted(((info["sets"][set_name]["position"], n) for n, info in self.params.items()
                        if set_name in info["sets"] and info["sets"][set_name]["position"] is not None
                        and n not in bound), key=lambda t: t[0])
        if len(args) > len(slots):
            return None
        result: dict[str, Any] = {}
        for (_, name), value in zip(slots, args):
            try:
                result[name] = self._coerce(name, value)
            except BindingError:
                return None
        return result

    def _mandatory(self, set_name: str) -> list[str]:
        return [n for n in self.sets[set_name] if n in self.params and self.params[n]["sets"].get(
            set_name, {}).get("required")]

    def _pipeline_param(self, set_name: str, kind: str, bound: dict[str, Any]) -> str | None:
        for name in self.sets[set_name]:
            info = self.params.get(name)
            if info and "ByValue" in info["pipeline"] and name not in bound and _accepts_kind(info["type"], kind):
                return name
        return None

    # --- entry point -----------------------------------------------------------------------------------
    def bind(self, parameters: tuple[tuple[str | None, Any], ...] | list[tuple[str | None, Any]],
             pipeline_kind: str | None = None) -> Bound:
        named: dict[str, Any] = {}
        positional: list[Any] = []
        for given, value in parameters:
            if given is None:
                positional.append(value)
                continue
            name = self.resolve_name(given.lstrip("-"))
            if name in named:
                raise self.error(
                    f"Cannot bind parameter because parameter '{name}' is specified more than once. To provide "
                    "multiple values to parameters that can accept multiple values, use the array syntax. For "
                    "example, \"-parameter value1,value2,value3\".", "ParameterAlreadyBound")
            named[name] = self._coerce(name, value)
        candidates = set(self.sets)
        for name in named:
            candidates &= self._sets_of(name)
        if not candidates:
            raise self.error("Parameter set cannot be resolved using the specified named parameters.",
                             "AmbiguousParameterSet")
        return self._choose(candidates, named, positional, pipeline_kind)

    def _choose(self, candidates: set[str], named: dict[str, Any], positional: list[Any],
                pipeline_kind: str | None) -> Bound:
        options: list[tuple[str, dict[str, Any], str | None]] = []
        for set_name in self._ordered(candidates):
            extra = self._positional(set_name, named, positional) if positional else {}
            if extra is None:
                continue
            params = {**named, **extra}
            pipe = self._pipeline_param(set_name, pipeline_kind, params) if pipeline_kind else None
            options.append((set_name, params, pipe))
        if not options:
            raise self.error(f"A positional parameter cannot be found that accepts argument "
                             f"'{_show(positional[-1])}'.", "PositionalParameterNotFound", target=positional[-1])
        if pipeline_kind and any(pipe for _, _, pipe in options):
            options = [o for o in options if o[2]]
        ready = [o for o in options if all(m in o[1] or m == o[2] for m in self._mandatory(o[0]))]
        if ready:
            if len(ready) > 1 and ready[0][0] != self.default_set:
                raise self.error("Parameter set cannot be resolved using the specified named parameters.",
                                 "AmbiguousParameterSet")
            set_name, params, pipe = ready[0]  # ordered: the default set first
            return Bound(self.cmdlet, set_name, params, pipe)
        names = [o[0] for o in options]
        if self.default_set in names or len(options) == 1:
            set_name, params, pipe = options[0]
            missing = [m for m in self._mandatory(set_name) if m not in params and m != pipe]
            raise self.error("Cannot process command because of one or more missing mandatory parameters: "
                             f"{' '.join(missing)}.", "MissingMandatoryParameter")
        raise self.error("Parameter set cannot be resolved using the specified named parameters.",
                         "AmbiguousParameterSet")


def _show(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


def bind(cmdlet: str, parameters: Any, pipeline_kind: str | None = None) -> Bound:
    return Binder(cmdlet).bind(parameters, pipeline_kind)
