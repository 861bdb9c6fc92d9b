"""``HyperVEngine``: the simulated Hyper-V host behind ``lab.engine.HostEngine``.

For each statement: bind every command (binding errors are terminating), then run the commands in turn on
the model under the fleet lock, passing ``Live`` objects between stages, and write the last stage's output.
Hyper-V's own failures are non-terminating error records unless ``-ErrorAction Stop`` (§5.4).
"""

from __future__ import annotations

import shlex
from typing import Any

from lab import cmdlets_export, cmdlets_read, cmdlets_write, select_object, timeline
from lab.binding import Binder, BindingError, Bound
from lab.cmdlet_context import Context, Handler, HandlerTable, Terminate
from lab.engine import CommandCall, Invocation, PipelineIO
from lab.errors import binding_record, command_not_found, scripts_not_allowed
from lab.hvobjects import Live, live_values, to_output
from lab.model import Fleet

HANDLERS: HandlerTable = {**cmdlets_read.HANDLERS, **cmdlets_write.HANDLERS, **cmdlets_export.HANDLERS,
                          **select_object.HANDLERS}


def _script_commands(call: CommandCall) -> list[CommandCall]:
    """A script on a host that allows scripts: the lab understands one plain command line per statement."""
    tokens = shlex.split(str(call.name), posix=True)
    if not tokens:
        return []
    params: list[tuple[str | None, Any]] = []
    for token in tokens[1:]:
        if token.startswith("-") and len(token) > 1:
            name, _, value = token[1:].partition(":")
            params.append((name, {"$false": False, "$true": True}.get(value.lower(), value) if value else None))
        elif params and params[-1][0] is not None and params[-1][1] is None:
            params[-1] = (params[-1][0], token)
        else:
            params.append((None, token))
    return [CommandCall(tokens[0], tuple(params), end_of_statement=True)]


class HyperVEngine:
    """One simulated Hyper-V host of ``fleet``."""

    def __init__(self, fleet: Fleet, host_name: str) -> None:
        self.fleet = fleet
        self.name = fleet.host(host_name).name

    def run(self, invocation: Invocation, io: PipelineIO) -> None:
        host = self.fleet.hosts[self.name]
        with self.fleet.lock:
            timeline.tick(self.fleet, host)  # log apply and resync up to the fleet clock
        commands: list[CommandCall] = []
        jea = host.jea_configuration is not None and invocation.configuration == host.jea_configuration
        for call in invocation.commands:
            if call.is_script:
                if jea or not host.allow_script:
                    io.fail(scripts_not_allowed())
                    return
                commands.extend(_script_commands(call))
            else:
                commands.append(call)
        statements: list[list[CommandCall]] = [[]]
        for call in commands:
            statements[-1].append(call)
            if call.end_of_statement:
                statements.append([])
        first_input = list(invocation.input_objects)
        for statement in (s for s in statements if s):
            try:
                self._run_statement(statement, first_input, io, jea)
            except Terminate as stop:
                io.fail(stop.record)
                return
            first_input = []

    def _bind_all(self, statement: list[CommandCall], has_input: Any, restricted: bool) -> list[tuple[Bound, Context]]:
        bound: list[tuple[Bound, Context]] = []
        kind = _input_kind(has_input)
        for call in statement:
            name = _canonical(call.name)
            if name is None:
                raise Terminate(command_not_found(call.name))
            handler_kind = HANDLERS[name][1]
            try:
                b = Binder(name).bind(call.parameters, kind)
            except BindingError as exc:
                raise Terminate(binding_record(exc)) from None
            ctx = Context(self.fleet, self.name, name, io=None,  # type: ignore[arg-type]
                          error_action=b.get("ErrorAction", "Continue"),
                          warning_action=b.get("WarningAction", "Continue"), restricted=restricted)
            bound.append((b, ctx))
            kind = handler_kind
        return bound

    def _run_statement(self, statement: list[CommandCall], input_objects: list[Any], io: PipelineIO,
                       restricted: bool) -> None:
        stages = self._bind_all(statement, input_objects, restricted)
        items: list[Any] | None = input_objects or None
        for bound, ctx in stages:
            ctx.io = io
            handler = HANDLERS[ctx.cmdlet][0]
            with self.fleet.lock:
                items = _run_stage(handler, ctx, bound, items)
            for job in ctx.deferred:
                items.extend(job())
            if io.stopping:
                return
        now = self.fleet.clock()
        for item in items or []:
            if io.stopping:
                return
            if isinstance(item, Live):
                with self.fleet.lock:
                    obj = to_output(item, now)
                io.output(obj)
            else:
                io.output(item)


def _run_stage(handler: Handler, ctx: Context, bound: Bound, items: list[Any] | None) -> list[Any]:
    if items is None:
        return handler(ctx, bound, None)
    out: list[Any] = []
    for item in items:
        if bound.pipeline_param is None:
            ctx.error(cmdlets_read.input_not_bound(ctx.cmdlet, item))
            continue
        per_item = Bound(bound.cmdlet, bound.parameter_set, dict(bound.params), bound.pipeline_param,
                         bound.pipeline_property)
        try:
            per_item.params[bound.pipeline_param] = _piped_value(ctx, bound, item)
        except (BindingError, KeyError, ValueError):
            ctx.error(cmdlets_read.input_not_bound(ctx.cmdlet, item))  # conversion failures are silent (§8)
            continue
        out.extend(handler(ctx, per_item, item))
    return out


def _piped_value(ctx: Context, bound: Bound, item: Any) -> Any:
    """What the pipeline parameter gets from one input object: the object itself (by value) or the value of its
    property (by property name), converted like an argument."""
    if bound.pipeline_param is None:
        raise ValueError("no pipeline parameter")
    if bound.pipeline_property is None:
        return [item] if _is_array(ctx.cmdlet, bound.pipeline_param) else item
    value = live_values(item, ctx.fleet.clock())[bound.pipeline_property] if isinstance(item, Live) else None
    return Binder(ctx.cmdlet).coerce_value(bound.pipeline_param, value)


def _is_array(cmdlet: str, param: str) -> bool:
    return str(Binder(cmdlet).params[param]["type"]).endswith("[]")


def _input_kind(items: Any) -> str | None:
    if not items:
        return None
    first = items[0]
    return getattr(first, "ps_kind", None) or ("String" if isinstance(first, str) else None)


def _canonical(name: str) -> str | None:
    short = name.split("\\", 1)[1] if name.lower().startswith(("hyper-v\\", "microsoft.powershell.utility\\")) else name
    return next((c for c in HANDLERS if c.lower() == short.lower()), None)
