"""The seam between the lab's protocol layer and its simulated Hyper-V.

The protocol side (``lab.wsman``, ``lab.shell``, ``lab.server``) decodes PSRP pipelines into
``CommandCall`` lists and hands them, with a ``PipelineIO``, to a ``HostEngine``. The Hyper-V side
(``lab.cmdlets`` on ``lab.model``) implements ``HostEngine``. Neither side imports the other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from psrpcore.types import ErrorCategory, ErrorCategoryInfo, ErrorRecord, NETException


@dataclass(frozen=True)
class CommandCall:
    """One command of a pipeline, exactly as the client sent it.

    ``parameters`` keeps the order and the raw values: ``(name, value)`` for a named parameter
    (``name`` without the dash), ``(None, value)`` for a positional argument. A switch arrives with
    value ``None``; ``-Confirm:$false`` arrives as ``("Confirm", False)``.
    """

    name: str
    parameters: tuple[tuple[str | None, Any], ...] = ()
    is_script: bool = False
    end_of_statement: bool = False


@dataclass
class Invocation:
    """A pipeline handed to a host engine: its commands, the session configuration and any input."""

    commands: list[CommandCall]
    configuration: str = "Microsoft.PowerShell"
    input_objects: list[Any] = field(default_factory=list)


class PipelineIO(Protocol):
    """What a running pipeline may write. Implemented by the protocol side on psrpcore's ServerPipeline."""

    def output(self, obj: Any) -> None: ...

    def error(self, record: ErrorRecord) -> None:
        """A non-terminating error record (the pipeline goes on)."""

    def warning(self, message: str) -> None: ...

    def progress(
        self, activity: str, status: str, percent: int, *, activity_id: int = 0, completed: bool = False
    ) -> None: ...

    def fail(self, record: ErrorRecord) -> None:
        """A terminating error: the pipeline ends in state Failed with this record as its reason."""

    @property
    def stopping(self) -> bool:
        """True once the client asked to stop (ctrl_c signal); long cmdlets poll it and return."""

    def wait_stopping(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds or until the client asks to stop; True when it did. A long cmdlet
        waits here instead of sleeping, so a stop ends it at once."""


class HostEngine(Protocol):
    """One simulated Hyper-V host. ``run`` is called on a thread of its own for every pipeline."""

    name: str

    def run(self, invocation: Invocation, io: PipelineIO) -> None:
        """Run the pipeline to the end, writing through ``io``. Returning without ``io.fail`` completes it."""


def error_record(
    message: str,
    fq_error_id: str,
    category: ErrorCategory = ErrorCategory.InvalidOperation,
    *,
    exception_type: str = "System.Management.Automation.RuntimeException",
    target: Any = None,
    activity: str | None = None,
    reason: str | None = None,
) -> ErrorRecord:
    """An ErrorRecord shaped like PowerShell's: exception type names, category info and FQID."""
    exception = NETException(Message=message, HResult=-2146233087)
    exception.PSObject.type_names = [exception_type, "System.Exception", "System.Object"]
    return ErrorRecord(
        Exception=exception,
        CategoryInfo=ErrorCategoryInfo(
            Category=category,
            Activity=activity,
            Reason=reason or exception_type.rsplit(".", 1)[-1],
            TargetName=None if target is None else str(target),
            TargetType=None if target is None else type(target).__name__,
        ),
        TargetObject=target,
        FullyQualifiedErrorId=fq_error_id,
    )
