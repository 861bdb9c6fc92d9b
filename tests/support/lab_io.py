"""An in-memory PipelineIO for driving lab engines directly in unit tests (our seam, not pypsrp)."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

from psrpcore.types import ErrorRecord
from psrpcore.types._serializer import deserialize, serialize

from lab.engine import CommandCall, Invocation

NOW = datetime(2025, 6, 2, 8, 0, tzinfo=timezone.utc)


class MemoryIO:
    def __init__(self) -> None:
        self.out: list[Any] = []
        self.errors: list[ErrorRecord] = []
        self.warnings: list[str] = []
        self.failed: ErrorRecord | None = None
        self._stop = threading.Event()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @stopping.setter
    def stopping(self, value: bool) -> None:
        self._stop.set() if value else self._stop.clear()

    def wait_stopping(self, timeout: float) -> bool:
        return self._stop.wait(timeout)

    def output(self, obj: Any) -> None:
        self.out.append(obj)

    def error(self, record: ErrorRecord) -> None:
        self.errors.append(record)

    def warning(self, message: str) -> None:
        self.warnings.append(message)

    def progress(self, activity: str, status: str, percent: int, *, activity_id: int = 0,
                 completed: bool = False) -> None:
        pass

    def fail(self, record: ErrorRecord) -> None:
        self.failed = record


def run(engine: Any, *commands: CommandCall, **kw: Any) -> MemoryIO:
    io = MemoryIO()
    engine.run(Invocation(list(commands), **kw), io)
    return io


def cmd(name: str, **params: Any) -> CommandCall:
    return CommandCall(name, tuple(params.items()))


def wire(obj: Any) -> Any:
    """Round-trip through psrpcore's CLIXML serializer, as the object would travel."""
    return deserialize(serialize(obj, None), None)
