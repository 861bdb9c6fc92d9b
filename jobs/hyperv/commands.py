"""The registry of every cmdlet and parameter hvbot may send, and the typed commands built from it.

Only what is in ``REGISTRY`` can be sent: anything else is a programming error (``CommandNotAllowed``), and so
is a value whose shape the parameter's official type refuses (a list to a scalar ``String``, a name outside an
enum): each parameter's type comes from the reference (``jobs.hyperv.syntax``). The registry also drives the
JEA role capability (``jobs.hyperv.jea``) and the preview text. ``-ErrorAction Stop`` is added to every command
and ``-Confirm:$false`` to mutating ones when the pipeline is sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from jobs.hyperv import syntax
from jobs.hyperv.syntax import ParamType

ParamKind = Literal["value", "switch"]


class CommandNotAllowed(ValueError):
    """A cmdlet or parameter outside the registry: a bug in hvbot, never a user error."""


@dataclass(frozen=True)
class Param:
    name: str
    kind: ParamKind = "value"
    accepted: tuple[str, ...] = ()  # the reference's accepted values; becomes a JEA ValidateSet


@dataclass(frozen=True)
class Form:
    """One way hvbot calls a cmdlet: parameters it always/optionally passes, and the one bound from input."""

    required: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()
    pipeline: str | None = None

    def accepts(self, names: frozenset[str], piped: bool) -> bool:
        if piped != (self.pipeline is not None):
            return False
        return self.required <= names <= self.required | self.optional


@dataclass(frozen=True)
class CmdletSpec:
    name: str
    mutating: bool
    params: Mapping[str, Param]
    forms: tuple[Form, ...]
    module: str = "Hyper-V"
    jea: bool = True  # listed in the JEA role capability; False: sent only to full-language endpoints

    def param_type(self, name: str) -> ParamType:
        """The official type of a registered parameter: scalar or array, switch, enum and its members."""
        return syntax.param_type(self.name, name)


def _spec(name: str, mutating: bool, params: Sequence[Param], *forms: Form) -> CmdletSpec:
    return CmdletSpec(name, mutating, {p.name: p for p in params}, tuple(forms))


def _f(required: Sequence[str] = (), optional: Sequence[str] = (), pipeline: str | None = None) -> Form:
    return Form(frozenset(required), frozenset(optional), pipeline)


SIMPLE, EXTENDED = "Simple", "Extended"
RELATIONSHIPS = (SIMPLE, EXTENDED)
SNAPSHOT_TYPES = ("Standard", "Recovery", "Planned", "Missing", "Replica", "AppConsistentReplica", "SyncedReplica")

REGISTRY: dict[str, CmdletSpec] = {
    s.name: s
    for s in (
        _spec("Get-VM", False, [Param("Name")], _f(optional=["Name"])),
        _spec(
            "Get-VMNetworkAdapter", False, [Param("VMName"), Param("Name")],
            _f(required=["VMName"], optional=["Name"]),
            _f(optional=["Name"], pipeline="VM"),
        ),
        _spec("Get-VMMemory", False, [Param("VMName")], _f(required=["VMName"]), _f(pipeline="VM")),
        _spec(
            "Get-VMSnapshot", False,
            [Param("VMName"), Param("Name"), Param("SnapshotType", accepted=SNAPSHOT_TYPES)],
            _f(required=["VMName"], optional=["Name", "SnapshotType"]),
        ),
        # Replica failover and reverse replication (hyperv.md §1.3-1.7), NIC teaming (§1.11)
        _spec("Stop-VM", True, [Param("Name"), Param("TurnOff", "switch")], _f(required=["Name"], optional=["TurnOff"])),
        _spec("Start-VM", True, [Param("Name")], _f(required=["Name"])),
        _spec(
            "Start-VMFailover", True,
            [Param("VMName"), Param("Prepare", "switch"), Param("AsTest", "switch"), Param("VMRecoverySnapshot")],
            _f(required=["VMName"], optional=["Prepare"]), _f(required=["VMName", "AsTest"]),
            _f(pipeline="VMRecoverySnapshot"), _f(required=["AsTest"], pipeline="VMRecoverySnapshot"),
        ),
        _spec("Stop-VMFailover", True, [Param("VMName")], _f(required=["VMName"])),
        _spec("Complete-VMFailover", True, [Param("VMName")], _f(required=["VMName"])),
        _spec(
            "Set-VMReplication", True,
            [Param("VMName"), Param("Reverse", "switch"), Param("AsReplica", "switch"), Param("ReplicaServerName")],
            _f(required=["VMName", "Reverse"], optional=["ReplicaServerName"]), _f(required=["VMName", "AsReplica"]),
        ),
        _spec("Start-VMInitialReplication", True, [Param("VMName")], _f(required=["VMName"])),
        _spec("Set-VMNetworkAdapter", True, [Param("VMName"), Param("Name"), Param("AllowTeaming", accepted=("On", "Off"))],
              _f(required=["VMName", "AllowTeaming"], optional=["Name"])),
        # Replica-VM backups and checkpoint export (hyperv.md §1.2, §1.8, §4)
        # Without -ReplicationRelationshipType a replica that extends replication returns both relationships.
        _spec("Get-VMReplication", False,
              [Param("VMName"), Param("ReplicationRelationshipType", accepted=RELATIONSHIPS)],
              _f(optional=["VMName", "ReplicationRelationshipType"])),
        _spec("Measure-VMReplication", False,
              [Param("VMName"), Param("ReplicationRelationshipType", accepted=RELATIONSHIPS)],
              _f(optional=["VMName", "ReplicationRelationshipType"])),
        _spec("Get-VMReplicationServer", False, [], _f()),
        # Stop-VM without -Force prompts when the guest's Shutdown service is unavailable (hyperv.md §1).
        _spec("Get-VMIntegrationService", False, [Param("VMName"), Param("Name")], _f(required=["VMName", "Name"])),
        # hvbot pauses, resumes and resets the Simple relationship only: a replica that extends replication
        # has an Extended one too (hyperv.md §1.8, §1.9).
        _spec("Suspend-VMReplication", True,
              [Param("VMName"), Param("ReplicationRelationshipType", accepted=("Simple",))],
              _f(required=["VMName", "ReplicationRelationshipType"])),
        _spec("Resume-VMReplication", True,
              [Param("VMName"), Param("Resynchronize", "switch"),
               Param("ReplicationRelationshipType", accepted=("Simple",))],
              _f(required=["VMName", "ReplicationRelationshipType"], optional=["Resynchronize"])),
        # After a resume, statistics still count the pause's missed cycles: a reset turns that Warning back to
        # Normal (hyperv.md §1.9, §3.7).
        _spec("Reset-VMReplicationStatistics", True,
              [Param("VMName"), Param("ReplicationRelationshipType", accepted=("Simple",))],
              _f(required=["VMName", "ReplicationRelationshipType"])),
        _spec("Checkpoint-VM", True, [Param("Name"), Param("SnapshotName"), Param("Passthru", "switch")],
              _f(required=["Name"], optional=["SnapshotName", "Passthru"])),
        _spec("Export-VMSnapshot", True, [Param("VMName"), Param("Name"), Param("Path")],
              _f(required=["VMName", "Name", "Path"])),
        # Fewer bytes for fleet-wide listings on full-language endpoints (jobs/inventory/queries.py find_ips). Not on
        # JEA: RestrictedRemoteServer's Select-Object proxy takes only 11 property names (hyperv.md §6.2).
        CmdletSpec("Select-Object", False, {"Property": Param("Property")},
                   (_f(required=["Property"], pipeline="InputObject"),), module="Microsoft.PowerShell.Utility",
                   jea=False),
    )
}


@dataclass(frozen=True)
class Command:
    cmdlet: str
    parameters: tuple[tuple[str, Any], ...] = ()
    mutating: bool = False

    def render(self) -> str:
        """Preview text, as an admin would type it (display only, never sent as script)."""
        parts = [self.cmdlet]
        for name, value in self.parameters:
            parts.append(f"-{name}" if value is None else f"-{name} {_ps_literal(value)}")
        return " ".join(parts)


@dataclass(frozen=True)
class Pipeline:
    commands: tuple[Command, ...] = field(default_factory=tuple)

    @property
    def mutating(self) -> bool:
        return any(c.mutating for c in self.commands)

    def render(self) -> str:
        return " | ".join(c.render() for c in self.commands)

    def __str__(self) -> str:
        return self.render()


def command(cmdlet: str, *, piped: bool = False, registry: Mapping[str, CmdletSpec] = REGISTRY,
            **params: Any) -> Command:
    """A checked command: ``command("Get-VM", Name=["web*"])``. ``None`` values are left out; a switch is True."""
    spec = registry.get(cmdlet)
    if spec is None:
        raise CommandNotAllowed(f"cmdlet {cmdlet} is not in the registry")
    given = {k: v for k, v in params.items() if v is not None and v is not False}
    unknown = sorted(set(given) - set(spec.params))
    if unknown:
        raise CommandNotAllowed(f"{cmdlet}: parameters not in the registry: {', '.join(unknown)}")
    if not any(f.accepts(frozenset(given), piped) for f in spec.forms):
        raise CommandNotAllowed(f"{cmdlet}: no registered form takes {sorted(given)} (piped={piped})")
    parameters: list[tuple[str, Any]] = []
    for name, value in given.items():
        p = spec.params[name]
        if p.kind == "switch":
            if value is not True:
                raise CommandNotAllowed(f"{cmdlet}: switch -{name} takes True")
            parameters.append((name, None))
            continue
        _check_accepted(cmdlet, p, value)
        _check_shape(spec, name, value)
        parameters.append((name, value))
    return Command(cmdlet, tuple(parameters), spec.mutating)


def pipeline(*commands: Command) -> Pipeline:
    if not commands:
        raise CommandNotAllowed("empty pipeline")
    return Pipeline(tuple(commands))


def single(cmdlet: str, **params: Any) -> Pipeline:
    return pipeline(command(cmdlet, **params))


def _check_accepted(cmdlet: str, p: Param, value: Any) -> None:
    if not p.accepted:
        return
    values = value if isinstance(value, (list, tuple)) else [value]
    bad = [v for v in values if str(v) not in p.accepted]
    if bad:
        raise CommandNotAllowed(f"{cmdlet}: -{p.name} accepts {', '.join(p.accepted)}")


def _check_shape(spec: CmdletSpec, name: str, value: Any) -> None:
    """The value must fit the parameter's official type: PowerShell refuses a list for a scalar parameter
    (CannotConvertArgument) and a name outside an enum."""
    try:
        problems = syntax.value_problems(spec.name, spec.param_type(name), value)
    except KeyError:
        raise CommandNotAllowed(f"{spec.name}: -{name} is not in the cmdlet reference") from None
    if problems:
        raise CommandNotAllowed("; ".join(problems))


def reference_problems(pipe: Pipeline, cmdlets: Mapping[str, Any] | None = None) -> list[str]:
    """What a real host would refuse in ``pipe`` as sent (with -ErrorAction and -Confirm), by the reference
    (``jobs.hyperv.syntax.check_pipeline``); empty when it binds."""
    return syntax.check_pipeline([(c.cmdlet, sent_parameters(c)) for c in pipe.commands], cmdlets)


def _ps_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "$true" if value else "$false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return ",".join(_ps_literal(v) for v in value)
    return "'" + str(value).replace("'", "''") + "'"


def sent_parameters(cmd: Command) -> tuple[tuple[str, Any], ...]:
    """What goes on the wire: the command's parameters plus -ErrorAction Stop (and -Confirm:$false)."""
    extra: tuple[tuple[str, Any], ...] = (("ErrorAction", "Stop"),)
    if cmd.mutating:
        extra += (("Confirm", False),)
    return cmd.parameters + extra


def check_against_reference(spec: CmdletSpec, reference: Mapping[str, Any]) -> list[str]:
    """Problems of one registry entry against a ``cmdlets`` mapping of hyperv-cmdlets.json's shape (empty = valid).

    Each form must fit inside one documented parameter set that has no mandatory parameter the form
    leaves out; every parameter must exist; accepted values must be among the documented ones.
    """
    doc = reference.get(spec.name)
    if doc is None:
        return [f"{spec.name}: not in the reference"]
    problems: list[str] = []
    doc_params: Mapping[str, Any] = doc["parameters"]
    for p in spec.params.values():
        d = doc_params.get(p.name)
        if d is None:
            problems.append(f"{spec.name}: parameter -{p.name} not in the reference")
            continue
        is_switch = d["type"] == "SwitchParameter"
        if is_switch != (p.kind == "switch"):
            problems.append(f"{spec.name}: -{p.name} kind {p.kind} but reference type is {d['type']}")
        if p.accepted and not set(p.accepted) <= set(d.get("accepted_values") or ()):
            problems.append(f"{spec.name}: -{p.name} accepted values not all documented")
    for form in spec.forms:
        if not _form_fits(form, doc_params, doc["parameter_sets"]):
            problems.append(f"{spec.name}: form {sorted(form.required | form.optional)} "
                            f"(pipeline={form.pipeline}) fits no parameter set")
    return problems


def _form_fits(form: Form, doc_params: Mapping[str, Any], sets: Mapping[str, Sequence[str]]) -> bool:
    used = form.required | form.optional | ({form.pipeline} if form.pipeline else set())
    for set_name, members in sets.items():
        if not used <= set(members):
            continue
        mandatory = {n for n in members if doc_params.get(n, {}).get("sets", {}).get(set_name, {}).get("required")}
        supplied = form.required | ({form.pipeline} if form.pipeline else set())
        if mandatory <= supplied and _pipeline_ok(form, doc_params):
            return True
    return False


def _pipeline_ok(form: Form, doc_params: Mapping[str, Any]) -> bool:
    if form.pipeline is None:
        return True
    return "ByValue" in str(doc_params.get(form.pipeline, {}).get("pipeline", ""))
