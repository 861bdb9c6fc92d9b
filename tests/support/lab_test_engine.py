"""A small protocol-test engine and fleet: lets the protocol layer be tested without Hyper-V.

Commands: ``Echo`` (outputs "name=value" for each parameter, then its input objects), ``Emit -Count N``
(N integers), ``Big -Size N`` (one string of N characters), ``Wait-Stop`` (runs until stopped),
``Slow -Seconds S``, ``Warn-And-Error`` (a warning, a non-terminating error, then output), ``Throw``
(a terminating error); script text outputs 2, or fails if it contains ``Write-Error``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from psrpcore.types import ErrorCategory

from lab.engine import Invocation, PipelineIO, error_record


@dataclass
class HostSpec:
    name: str
    site: str = "site-a"
    fqdn: str = ""
    jea_configuration: str | None = None
    powered: bool = True


@dataclass
class FleetSpec:
    hosts: dict[str, HostSpec]
    controls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def apply_control(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        if action == "power_loss":
            self.hosts[args["host"]].powered = False
        elif action == "power_on":
            self.hosts[args["host"]].powered = True
        elif action != "vm_state":
            raise ValueError(f"unknown action {action!r}")
        self.controls.append((action, args))
        return {"applied": action}


def spec_fleet(*names: str, jea: dict[str, str] | None = None) -> FleetSpec:
    jea = jea or {}
    return FleetSpec({n: HostSpec(n, fqdn=f"{n}.lab.local", jea_configuration=jea.get(n)) for n in names or ("h1",)})


class ProtocolEngine:
    """One per host; ``stopped`` is set when a Wait-Stop pipeline saw the stop signal and returned."""

    def __init__(self, fleet: Any, host_name: str) -> None:
        self.name = host_name
        self.stopped = threading.Event()
        self.started = threading.Event()

    def run(self, invocation: Invocation, io: PipelineIO) -> None:
        for call in invocation.commands:
            params = dict(call.parameters)
            if call.is_script:
                if "Write-Error" in call.name:
                    io.fail(error_record("error", "Microsoft.PowerShell.Commands.WriteErrorException", ErrorCategory.NotSpecified))
                else:
                    io.output(2)
            elif call.name == "Echo":
                for name, value in call.parameters:
                    io.output(f"{name}={value}")
                for obj in invocation.input_objects:
                    io.output(obj)
            elif call.name == "Emit":
                for i in range(int(params["Count"])):
                    io.output(i)
            elif call.name == "Big":
                io.output("x" * int(params["Size"]))
            elif call.name == "Wait-Stop":
                self._wait_stop(io)
            elif call.name == "Slow":
                if not io.wait_stopping(float(params["Seconds"])):  # a long cmdlet, e.g. Start-Sleep
                    io.output("slow done")
            elif call.name == "Warn-And-Error":
                io.warning("careful")
                io.error(error_record("VM 'nope' was not found.", "InvalidParameter,Get-VM", ErrorCategory.InvalidArgument, target="nope"))
                io.output("after the error")
            elif call.name == "Throw":
                io.fail(error_record("It failed.", "Failed,Throw", ErrorCategory.OperationStopped))
                return
            else:
                io.fail(error_record(f"The term '{call.name}' is not recognized.", "CommandNotFoundException", ErrorCategory.ObjectNotFound))
                return

    def _wait_stop(self, io: PipelineIO) -> None:
        self.started.set()
        if io.wait_stopping(30):  # server side: a long cmdlet until the client stops it
            self.stopped.set()


class EngineRegistry:
    """engine_factory that remembers the engine it built for each host."""

    def __init__(self) -> None:
        self.engines: dict[str, ProtocolEngine] = {}

    def __call__(self, fleet: Any, host_name: str) -> ProtocolEngine:
        self.engines[host_name] = ProtocolEngine(fleet, host_name)
        return self.engines[host_name]
