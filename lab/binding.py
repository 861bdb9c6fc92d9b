"""PowerShell parameter binding for the lab's cmdlets, driven by ``lab/data/hyperv-cmdlets.json``.

Follows PowerShell's binder as ``powershell-binding.md`` (the facts read from the PowerShell engine: ``CPBC`` =
CmdletParameterBinderController.cs, ``PBB`` = ParameterBinderBase.cs) states it, section by section: named
parameters by full name, alias or unambiguous prefix (§5); conversions, collections, enums, switches and
``$null`` (§1-§4, in ``lab.coerce``); positional arguments (§9); parameter-set resolution and missing mandatory
parameters without a prompt (§6); the null/empty check of mandatory parameters (§7); pipeline input by value,
then by property name (§8). Failures raise ``BindingError`` with PowerShell 5.1's wording and
FullyQualifiedErrorId. Where the reference is silent the lab is stricter; ``lab/README.md`` lists those places.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lab import hvdata
from lab.coerce import (
    BINDING_EXCEPTION,
    SUBCLASSES,
    TAKES_ANYTHING,
    VALIDATION_EXCEPTION,
    CoercionError,
    coerce,
    is_collection,
)

COMMON: dict[str, tuple[str, list[str]]] = {  # name -> (type, aliases), about_CommonParameters
    "Verbose": ("SwitchParameter", ["vb"]), "Debug": ("SwitchParameter", ["db"]),
    "ErrorAction": ("ActionPreference", ["ea"]), "WarningAction": ("ActionPreference", ["wa"]),
    "InformationAction": ("ActionPreference", ["infa"]), "ProgressAction": ("ActionPreference", ["proga"]),
    "ErrorVariable": ("String", ["ev"]), "WarningVariable": ("String", ["wv"]),
    "InformationVariable": ("String", ["iv"]), "OutVariable": ("String", ["ov"]),
    "OutBuffer": ("Int32", ["ob"]), "PipelineVariable": ("String", ["pv"]),
}


def command_class(cmdlet: str) -> str:
    """``Get-VMNetworkAdapter`` -> ``Microsoft.HyperV.PowerShell.Commands.GetVMNetworkAdapterCommand`` (the form
    of hyperv.md §5.4's ``...ResetVMReplicationStatisticsCommand``); a core cmdlet's own class from its record
    (``Select-Object`` -> ``Microsoft.PowerShell.Commands.SelectObjectCommand``)."""
    known = hvdata.cmdlets().get(cmdlet, {}).get("command_class")
    return str(known) if known else "Microsoft.HyperV.PowerShell.Commands." + cmdlet.replace("-", "") + "Command"


class BindingError(Exception):
    """A parameter binding failure: PowerShell's message, error id, exception type and category (§10)."""

    def __init__(self, cmdlet: str, message: str, error_id: str,
                 exception_type: str = BINDING_EXCEPTION, target: Any = None,
                 category: str = "InvalidArgument") -> None:
        super().__init__(message)
        self.cmdlet = cmdlet
        self.message = message
        self.error_id = error_id
        self.exception_type = exception_type
        self.target = target
        self.category = category

    @property
    def fq_error_id(self) -> str:
        return f"{self.error_id},{command_class(self.cmdlet)}"


@dataclass
class Bound:
    cmdlet: str
    parameter_set: str
    params: dict[str, Any] = field(default_factory=dict)
    pipeline_param: str | None = None  # the parameter that takes each pipeline input object
    pipeline_property: str | None = None  # set when it binds by property name: the input's property it takes

    def get(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)


def _base(type_name: str) -> str:
    return type_name[:-2] if type_name.endswith("[]") else type_name


def _accepts_kind(type_name: str, kind: str) -> bool:
    """Pipeline input by value without coercion (§8): the object's own class, a base class, or Object/PSObject."""
    base = _base(type_name)
    return base in TAKES_ANYTHING or base == kind or kind in SUBCLASSES.get(base, ())


def _properties_of(kind: str) -> dict[str, str]:
    try:
        return hvdata.class_properties(kind)
    except KeyError:
        return {}


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

    # --- names (§5) ------------------------------------------------------------------------------------
    def _type_of(self, name: str) -> str:
        return self.params[name]["type"] if name in self.params else COMMON[name][0]

    def resolve_name(self, given: str) -> str | None:
        """The parameter ``-given`` names, or None when none matches (reported after the rest of binding)."""
        table = {n: [n] + list(p["aliases"]) for n, p in self.params.items()}
        common = {n: [n] + aliases for n, (_, aliases) in COMMON.items() if n not in table}
        low = given.lower()
        # An exact name or alias wins [source: §5, MergedCommandParameterMetadata.cs#GetMatchingParameter].
        exact = [n for n, names in {**table, **common}.items() if low in (x.lower() for x in names)]
        if exact:
            return exact[0]
        own = [n for n, names in table.items() if any(x.lower().startswith(low) for x in names)]
        others = [n for n, names in common.items() if any(x.lower().startswith(low) for x in names)]
        if len(own) == 1:
            return own[0]  # a lone cmdlet parameter wins over common ones [source: §5]
        matches = own + others
        if len(matches) == 1:
            return matches[0]
        if matches:
            # PBS AmbiguousParameter, thrown at once; {6} = " -Name -NewName" [source: §5]
            listed = "".join(" -" + m for m in matches)
            raise self.error(f"Parameter cannot be processed because the parameter name '{given}' is ambiguous. "
                             f"Possible matches include:{listed}.", "AmbiguousParameter")
        return None

    def coerce_value(self, name: str, value: Any) -> Any:
        """Convert one argument for parameter ``name``; ``$null`` handled as §4 says."""
        type_name = self._type_of(name)
        if value is None:
            if type_name == "SwitchParameter":
                return True  # $null to a switch: present [source: §4, PBB#HandleNullParameterForSpecialTypes]
            if type_name == "Boolean":
                raise self.error(f"Cannot bind argument to parameter '{name}' because it is null.",
                                 "ParameterArgumentValidationErrorNullNotAllowed")  # [source: §4]
            return None  # a named parameter with <Nil/> binds $null, never MissingArgument [source: §0]
        accepted = self.params[name]["accepted_values"] if name in self.params else []
        try:
            return coerce(type_name, value, accepted, name)
        except CoercionError as exc:
            raise self.error(exc.message, exc.error_id, exception_type=exc.exception_type, target=value,
                             category=exc.category) from None

    # --- sets (§6) -------------------------------------------------------------------------------------
    def _sets_of(self, name: str) -> set[str]:
        if name not in self.params:
            return set(self.sets)  # common parameters belong to every set
        return set(self.params[name]["sets"]) & set(self.sets)

    def _ordered(self, sets: set[str]) -> list[str]:
        return sorted(sets, key=lambda s: (s != self.default_set, list(self.sets).index(s)))

    def _positional(self, set_name: str, bound: dict[str, Any], args: list[Any]) -> dict[str, Any] | None:
        """Unbound positional parameters of the set take the unnamed arguments in Position order (§9)."""
        slots = sorted(((info["sets"][set_name]["position"], n) for n, info in self.params.items()
                        if set_name in info["sets"] and info["sets"][set_name]["position"] is not None
                        and n not in bound), key=lambda t: t[0])
        if len(args) > len(slots):
            return None
        result: dict[str, Any] = {}
        for (_, name), value in zip(slots, args):
            try:
                result[name] = self.coerce_value(name, value)
            except BindingError:
                return None
        return result

    def _mandatory(self, set_name: str) -> list[str]:
        return [n for n in self.sets[set_name] if n in self.params and self.params[n]["sets"].get(
            set_name, {}).get("required")]

    def _pipeline_binding(self, set_name: str, kind: str, bound: dict[str, Any],
                          by_property: bool) -> tuple[str, str | None] | None:
        """The parameter of ``set_name`` that takes a ``kind`` input object: by value, or by property name (its
        name, then its aliases), both without coercion [source: §8, CPBC#BindPipelineParametersPrivate]."""
        properties = _properties_of(kind) if by_property else {}
        for name in self.sets[set_name]:
            info = self.params.get(name)
            if not info or name in bound:
                continue
            if not by_property and "ByValue" in info["pipeline"] and _accepts_kind(info["type"], kind):
                return name, None
            if by_property and "ByPropertyName" in info["pipeline"]:
                for candidate in [name, *info["aliases"]]:
                    prop = next((p for p in properties if p.lower() == candidate.lower()), None)
                    if prop is not None and _property_fits(properties[prop], info["type"]):
                        return name, prop
        return None

    # --- entry point -----------------------------------------------------------------------------------
    def bind(self, parameters: tuple[tuple[str | None, Any], ...] | list[tuple[str | None, Any]],
             pipeline_kind: str | None = None) -> Bound:
        named: dict[str, Any] = {}
        positional: list[Any] = []
        unknown: list[tuple[str, Any]] = []
        for given, value in parameters:
            if given is None:
                positional.append(value)
                continue
            name = self.resolve_name(given.lstrip("-"))
            if name is None:
                unknown.append((given.lstrip("-"), value))
                continue
            if name in named:
                # PBS ParameterAlreadyBound [source: §5, ParameterBinderController.cs#BindNamedParameters]
                raise self.error(
                    f"Cannot bind parameter because parameter '{name}' is specified more than once. To provide "
                    "multiple values to parameters that can accept multiple values, use the array syntax. For "
                    "example, \"-parameter value1,value2,value3\".", "ParameterAlreadyBound")
            named[name] = self.coerce_value(name, value)
        candidates = set(self.sets)
        for name in named:
            candidates &= self._sets_of(name)
        if not candidates:
            raise self.error("Parameter set cannot be resolved using the specified named parameters.",
                             "AmbiguousParameterSet")  # [source: §6, CPBC#ValidateParameterSets]
        options = self._options(candidates, named, positional)
        if unknown:
            # PBS NamedParameterNotFound comes after all other argument binding, so another parameter's error
            # wins [source: §5, CPBC#VerifyArgumentsProcessed].
            raise self.error(f"A parameter cannot be found that matches parameter name '{unknown[0][0]}'.",
                             "NamedParameterNotFound")
        return self._choose(options, pipeline_kind)

    def _options(self, candidates: set[str], named: dict[str, Any],
                 positional: list[Any]) -> list[tuple[str, dict[str, Any]]]:
        options: list[tuple[str, dict[str, Any]]] = []
        for set_name in self._ordered(candidates):
            extra = self._positional(set_name, named, positional) if positional else {}
            if extra is not None:
                options.append((set_name, {**named, **extra}))
        if not options:
            # PBS PositionalParameterNotFound [source: §9, ParameterBinderController.cs#BindPositionalParameters]
            raise self.error(f"A positional parameter cannot be found that accepts argument "
                             f"'{_show(positional[-1])}'.", "PositionalParameterNotFound", target=positional[-1])
        return options

    def _choose(self, options: list[tuple[str, dict[str, Any]]], pipeline_kind: str | None) -> Bound:
        piped: list[tuple[str, dict[str, Any], tuple[str, str | None] | None]] = [
            (s, p, None) for s, p in options]
        if pipeline_kind:
            # By value first, then by property name, the default set first in each pass [source: §8].
            for by_property in (False, True):
                found = [(s, p, b) for s, p in options
                         if (b := self._pipeline_binding(s, pipeline_kind, p, by_property)) is not None]
                if found:
                    piped = found
                    break
        ready = [o for o in piped if all(m in o[1] or (o[2] and m == o[2][0]) for m in self._mandatory(o[0]))]
        if ready:
            if len(ready) > 1 and ready[0][0] != self.default_set:
                raise self.error("Parameter set cannot be resolved using the specified named parameters.",
                                 "AmbiguousParameterSet")  # [source: §6]
            set_name, params, pipe = ready[0]  # ordered: the default set first
            self._check_mandatory_values(set_name, params)
            return Bound(self.cmdlet, set_name, params, *(pipe or (None, None)))
        names = [o[0] for o in piped]
        if self.default_set in names or len(piped) == 1:
            set_name, params, pipe = piped[0]
            missing = [m for m in self._mandatory(set_name) if m not in params and not (pipe and m == pipe[0])]
            # Over remoting there is no host to prompt, so the prompt fails: PBS MissingMandatoryParameter,
            # {1} = " VMName Path" [source: §6, CPBC#HandleUnboundMandatoryParameters].
            raise self.error("Cannot process command because of one or more missing mandatory parameters: "
                             f"{' '.join(missing)}.", "MissingMandatoryParameter")
        raise self.error("Parameter set cannot be resolved using the specified named parameters.",
                         "AmbiguousParameterSet")  # [source: §6]

    def _check_mandatory_values(self, set_name: str, params: dict[str, Any]) -> None:
        """A mandatory parameter given $null, "" or an empty array [source: §7, PBB#ValidateNullOrEmptyArgument].
        The reference says "Mandatory"; the lab checks the parameters mandatory in the chosen set."""
        for name in self._mandatory(set_name):
            if name not in params:
                continue
            value = params[name]
            what = _null_or_empty(value)
            if what is None and is_collection(value):
                # The elements too: the reference is silent on elements; the lab checks them (stricter).
                what = next((w for item in value if (w := _null_or_empty(item)) is not None), None)
            if what is not None:
                raise self.error(f"Cannot bind argument to parameter '{name}' because it is {what[0]}.",
                                 f"ParameterArgumentValidationError{what[1]}", exception_type=VALIDATION_EXCEPTION,
                                 category="InvalidData")


def _null_or_empty(value: Any) -> tuple[str, str] | None:
    if value is None:
        return "null", "NullNotAllowed"
    if isinstance(value, str) and value == "":
        return "an empty string", "EmptyStringNotAllowed"
    if is_collection(value) and not value:
        return "an empty array", "EmptyArrayNotAllowed"
    return None


def _property_fits(property_type: str, parameter_type: str) -> bool:
    """A property value binds without coercion when its .NET type is the parameter's (or its element type)."""
    inner = property_type.removeprefix("System.Nullable<").removesuffix(">")
    return inner.rsplit(".", 1)[-1] == _base(parameter_type) or _base(parameter_type) in TAKES_ANYTHING


def _show(value: Any) -> str:
    if is_collection(value):
        return " ".join(str(v) for v in value)
    return str(value)


def bind(cmdlet: str, parameters: Any, pipeline_kind: str | None = None) -> Bound:
    return Binder(cmdlet).bind(parameters, pipeline_kind)
