"""What every cmdlet handler of the lab shares: its ``Context``, the ``Handler`` signature and ``Terminate``.

``lab.cmdlets`` (the engine) and the handler modules (``lab.cmdlets_read``, ``lab.cmdlets_write``,
``lab.cmdlets_export``, ``lab.select_object``) all import these from here, so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from psrpcore.types import ErrorRecord

from lab.binding import Bound
from lab.engine import PipelineIO
from lab.errors import warning_record
from lab.model import Fleet


class Terminate(Exception):
    """Raised inside a statement to end the pipeline with ``record`` (e.g. -ErrorAction Stop)."""

    def __init__(self, record: ErrorRecord) -> None:
        super().__init__(str(record))
        self.record = record


@dataclass
class Context:
    """What a cmdlet handler sees: the fleet, this host, its error/warning streams."""

    fleet: Fleet
    host_name: str
    cmdlet: str
    io: PipelineIO
    error_action: str = "Continue"
    warning_action: str = "Continue"
    restricted: bool = False  # a JEA (RestrictedRemoteServer) session: Select-Object is the restricted proxy
    errors: list[ErrorRecord] = field(default_factory=list)
    deferred: list[Callable[[], list[Any]]] = field(default_factory=list)

    def defer(self, job: Callable[[], list[Any]]) -> None:
        """Long work (an export) to run after the stage, outside the fleet lock; its result is output."""
        self.deferred.append(job)

    @property
    def host(self) -> Any:
        return self.fleet.hosts[self.host_name]

    def error(self, record: ErrorRecord) -> None:
        if self.error_action == "Stop":
            raise Terminate(record)
        if self.error_action not in ("SilentlyContinue", "Ignore"):
            self.io.error(record)

    def warning(self, message: str) -> None:
        if self.warning_action == "Stop":
            raise Terminate(warning_record(self.cmdlet, message))
        if self.warning_action not in ("SilentlyContinue", "Ignore"):
            self.io.warning(message)


Handler = Callable[[Context, Bound, Any], list[Any]]  # (context, bound parameters, piped item or None) -> output
HandlerTable = dict[str, tuple[Handler, str | None]]  # cmdlet -> (handler, kind of object it outputs)
