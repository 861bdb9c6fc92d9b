"""One WS-Management shell: a psrpcore ``ServerRunspacePool`` and its ``ServerPipeline``s.

psrpcore is sans-I/O and not thread-safe, so every touch of the pool happens under the shell's one
``Condition`` (gotcha 5): HTTP worker threads (Command/Send/Receive/Signal) and the engine threads that
write pipeline output share it. psrpcore has one outgoing queue for the pool and all its pipelines;
``_drain`` moves it into per-target fragment queues at once (gotcha 3), so a pool-level Receive never
swallows pipeline output.
"""

from __future__ import annotations

import collections
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from psrpcore import ServerPipeline
from psrpcore._events import (
    CreatePipelineEvent,
    EndOfPipelineInputEvent,
    GetAvailableRunspacesEvent,
    PipelineInputEvent,
    ResetRunspaceStateEvent,
    SetMaxRunspacesEvent,
    SetMinRunspacesEvent,
)
from psrpcore._payload import PSRPPayload, StreamType
from psrpcore.types import ErrorCategory, ErrorRecord, ProgressRecordType, PSInvocationState, PSRPMessageType

from lab import wsman
from lab.clixml import write_serialized_output
from lab.engine import CommandCall, HostEngine, Invocation, error_record
from lab.runspace_pool import LabRunspacePool

MAX_FRAGMENT = 32 * 1024  # psrp.md gotcha 11: 32 KiB fragments, 2,000 objects in 7 Receives
DEFAULT_CONFIGURATION = "Microsoft.PowerShell"
CommandHook = Callable[[Invocation], None]


def split_fragments(data: bytes) -> list[bytes]:
    """A psrpcore payload may hold several PSRP fragments; each gets its own ``rsp:Stream`` like Windows."""
    out, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset + 17 : offset + 21])
        out.append(data[offset : offset + 21 + length])
        offset += 21 + length
    return out


def pipeline_id_of(fragment: bytes) -> uuid.UUID | None:
    """The PSRP pipeline id in a start fragment's message header (.NET GUID byte order).

    Normally equal to the WSMan CommandId, but some recorded clients wrote the GUID in another byte
    order; the lab follows the id inside the message, as psrpcore does.
    """
    if len(fragment) < 61 or not fragment[16] & 0x1:
        return None
    return uuid.UUID(bytes_le=bytes(fragment[45:61]))


def fragment_size(max_envelope: int) -> int:
    """Largest fragment whose base64 fits a Receive envelope of ``max_envelope`` bytes."""
    room = max_envelope - wsman.ENVELOPE_RESERVE - wsman.stream_overhead(str(uuid.UUID(int=0)))
    return max(64, min(MAX_FRAGMENT, room * 3 // 4))


class LabPipelineIO:
    """``lab.engine.PipelineIO`` on a psrpcore ServerPipeline; every call takes the shell lock."""

    def __init__(self, shell: "Shell", run: "PipelineRun") -> None:
        self._shell = shell
        self._run = run

    @property
    def stopping(self) -> bool:
        return self._run.stop_event.is_set()

    def wait_stopping(self, timeout: float) -> bool:
        return self._run.stop_event.wait(timeout)

    def _write(self, action: Callable[[ServerPipeline], None]) -> None:
        with self._shell.cond:
            if self._run.pipe.state != PSInvocationState.Running:
                return  # stopped or failed: PowerShell drops later writes too
            action(self._run.pipe)
            self._shell.drain()

    def output(self, obj: Any) -> None:
        render = getattr(obj, "to_clixml", None)
        if render is None:
            self._write(lambda p: p.write_output(obj))
            return
        # lab.clixml.HyperVOutput renders the bytes psrpcore would, ~20x faster; outside the shell lock
        data = render()
        self._write(lambda p: write_serialized_output(p, data))

    def error(self, record: ErrorRecord) -> None:
        self._write(lambda p: p.prepare_message(record, message_type=PSRPMessageType.ErrorRecord))

    def warning(self, message: str) -> None:
        self._write(lambda p: p.write_warning(message))

    def progress(self, activity: str, status: str, percent: int, *, activity_id: int = 0, completed: bool = False) -> None:
        kind = ProgressRecordType.Completed if completed else ProgressRecordType.Processing
        self._write(
            lambda p: p.write_progress(activity, activity_id, status, percent_complete=percent, record_type=kind)
        )

    def fail(self, record: ErrorRecord) -> None:
        # psrpcore has no public "fail" (gotcha 4); _change_state emits PipelineState=Failed with the reason.
        self._write(lambda p: p._change_state(PSInvocationState.Failed, error=record))


@dataclass
class PipelineRun:
    """A pipeline id (the WSMan CommandId) and what the lab knows about its run."""

    command_id: str
    pipe: ServerPipeline
    stop_event: threading.Event = field(default_factory=threading.Event)
    commands: list[CommandCall] | None = None
    no_input: bool = True
    inputs: list[Any] = field(default_factory=list)
    started: bool = False

    @property
    def finished(self) -> bool:
        return self.pipe.state in (PSInvocationState.Completed, PSInvocationState.Failed, PSInvocationState.Stopped)


class Shell:
    """A runspace pool shell for one client; all methods are called by the WS-Management layer."""

    def __init__(
        self,
        shell_id: str,
        configuration: str,
        engine: HostEngine,
        *,
        on_command: CommandHook,
        max_commands: int = 1000,
        max_envelope: int = 153600,
    ) -> None:
        self.shell_id = shell_id
        self.configuration = configuration
        self.engine = engine
        self.cond = threading.Condition()
        self.pool = LabRunspacePool()
        self.queues: dict[uuid.UUID | None, collections.deque[bytes]] = collections.defaultdict(collections.deque)
        self.runs: dict[str, PipelineRun] = {}  # by WSMan CommandId (upper case)
        self._by_pid: dict[uuid.UUID, PipelineRun] = {}  # by PSRP pipeline id
        self.closed = False
        self._on_command = on_command
        self._max_commands = max_commands
        self._fragment = fragment_size(max_envelope)

    # -- WS-Management operations -------------------------------------------------------------

    def open(self, creation_xml: bytes) -> None:
        """Feed SessionCapability + InitRunspacePool; the three opening replies are queued now (gotcha 7)."""
        with self.cond:
            self._feed(creation_xml)

    def command(self, command_id: str, first_fragment: bytes, max_envelope: int) -> None:
        pid = pipeline_id_of(first_fragment) or uuid.UUID(command_id)
        with self.cond:
            self._fragment = fragment_size(max_envelope)
            old = self.runs.pop(command_id, None)
            if old is not None:  # a re-used CommandId (gotcha 9): forget the earlier run
                self._terminate(old)
            if len(self.runs) >= self._max_commands:
                raise wsman.command_quota_exceeded()
            # psrpcore needs the pipeline before its CreatePipeline fragment arrives (gotcha 2)
            run = PipelineRun(command_id, ServerPipeline(self.pool, pid))
            self.runs[command_id] = self._by_pid[pid] = run
            self._feed(first_fragment)

    def send(self, data: bytes) -> None:
        with self.cond:
            self._feed(data)

    def receive(self, command_id: str | None, timeout: float, max_envelope: int) -> tuple[list[bytes], bool]:
        """Long-poll: fragments for one target within ``max_envelope``, and whether the command is done."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                run = self._run_for(command_id)
                queue = self.queues[run.pipe.pipeline_id if run else None]
                if queue or (run is not None and run.finished):
                    return self._take(queue, max_envelope, command_id), bool(run and run.finished and not queue)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed:
                    raise wsman.timed_out()
                self.cond.wait(remaining)

    def signal(self, command_id: str, code: str) -> None:
        with self.cond:
            run = self.runs.get(command_id)
            if code == wsman.SIGNAL_TERMINATE:
                if run is not None:
                    self._terminate(self.runs.pop(command_id))
                return
            if run is None:
                raise wsman.unknown_command()
            self._stop(run)

    def close(self) -> None:
        with self.cond:
            for run in list(self.runs.values()):
                self._terminate(run)
            self.runs.clear()
            self.closed = True
            self.cond.notify_all()

    # -- internals (called with self.cond held) -------------------------------------------------

    def _run_for(self, command_id: str | None) -> PipelineRun | None:
        if command_id is None:
            return None
        run = self.runs.get(command_id)
        if run is None:
            raise wsman.unknown_command()
        return run

    def _take(self, queue: collections.deque[bytes], max_envelope: int, command_id: str | None) -> list[bytes]:
        budget = max_envelope - wsman.ENVELOPE_RESERVE
        overhead = wsman.stream_overhead(command_id)
        taken: list[bytes] = []
        while queue:
            cost = overhead + (len(queue[0]) + 2) // 3 * 4
            if taken and cost > budget:
                break
            taken.append(queue.popleft())
            budget -= cost
        return taken

    def drain(self) -> None:
        """Move psrpcore's single outgoing queue into per-target fragment queues and wake pollers."""
        moved = False
        while (payload := self.pool.data_to_send(self._fragment)) is not None:
            self.queues[payload.pipeline_id].extend(split_fragments(payload.data))
            moved = True
        if moved:
            self.cond.notify_all()

    def _feed(self, data: bytes) -> None:
        self.pool.receive_data(PSRPPayload(data, StreamType.default, None))
        while (event := self.pool.next_event()) is not None:
            self._on_event(event)
        self.drain()

    def _on_event(self, event: Any) -> None:
        if isinstance(event, CreatePipelineEvent):
            run = self._by_pid[event.pipeline_id]
            pipeline = self.pool.pipeline_table[event.pipeline_id].metadata  # psrpcore built it from the event
            run.commands = [
                CommandCall(
                    name=str(c.command_text),
                    parameters=tuple((None if n is None else str(n), v) for n, v in c.parameters),
                    is_script=bool(c.is_script),
                    end_of_statement=bool(c.end_of_statement),
                )
                for c in pipeline.commands
            ]
            run.no_input = bool(pipeline.no_input)
            if run.no_input:
                self._start(run)
        elif isinstance(event, PipelineInputEvent):
            self._by_pid[event.pipeline_id].inputs.append(event.data)
        elif isinstance(event, EndOfPipelineInputEvent):
            run = self._by_pid[event.pipeline_id]
            if run.commands is not None and not run.started:
                self._start(run)
        elif isinstance(event, (SetMaxRunspacesEvent, SetMinRunspacesEvent, ResetRunspaceStateEvent)):
            self.pool.runspace_availability_response(event.ci, True)
        elif isinstance(event, GetAvailableRunspacesEvent):
            self.pool.runspace_availability_response(event.ci, max(1, self.pool.max_runspaces))

    def _start(self, run: PipelineRun) -> None:
        run.started = True
        invocation = Invocation(list(run.commands or []), self.configuration, list(run.inputs))
        self._on_command(invocation)
        run.pipe.start()
        thread = threading.Thread(target=self._execute, args=(run, invocation), daemon=True, name=f"pipe-{run.command_id[:8]}")
        thread.start()

    def _execute(self, run: PipelineRun, invocation: Invocation) -> None:
        io = LabPipelineIO(self, run)
        try:
            if self.configuration != DEFAULT_CONFIGURATION and any(c.is_script for c in invocation.commands):
                io.fail(no_language_error(next(c.name for c in invocation.commands if c.is_script)))
            else:
                self.engine.run(invocation, io)
        except Exception as exc:  # an engine bug must end the pipeline, not hang the client
            io.fail(error_record(f"The lab engine failed: {type(exc).__name__}: {exc}", "LabEngineFailure"))
        with self.cond:
            if run.pipe.state == PSInvocationState.Running:
                run.pipe.complete()
            self.drain()
            self.cond.notify_all()

    def _stop(self, run: PipelineRun) -> None:
        run.stop_event.set()
        if run.pipe.state in (PSInvocationState.Running, PSInvocationState.Stopping):
            run.pipe.stop()
        self.drain()

    def _terminate(self, run: PipelineRun) -> None:
        run.stop_event.set()
        if run.pipe.state in (PSInvocationState.Running, PSInvocationState.Stopping):
            run.pipe.stop()
        if run.pipe.state == PSInvocationState.NotStarted or run.finished:
            run.pipe.close()
        self.drain()
        self.queues.pop(run.pipe.pipeline_id, None)
        if self._by_pid.get(run.pipe.pipeline_id) is run:
            del self._by_pid[run.pipe.pipeline_id]


def no_language_error(script: str) -> ErrorRecord:
    """What a JEA (NoLanguage) endpoint answers to script text, as recorded from Windows."""
    return error_record(
        "The syntax is not supported by this runspace. This can occur if the runspace is in no-language mode.",
        "ScriptsNotAllowed",
        ErrorCategory.ParserError,
        exception_type="System.Management.Automation.ParseException",
        target=script,
    )
