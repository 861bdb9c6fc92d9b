"""The contract backup products' pre/post scripts rely on: exit code, one-line reason, `--json` document.

`hvbot backup check VM`, `hvbot backup start VM --for 2h` and `hvbot backup end VM` all end in a `CliResult`:

- exit code 0: ready (check) or done (start/end);
- exit code 75 (EX_TEMPFAIL from sysexits.h, which backup schedulers read as "try again later"): not ready
  for reasons expected to clear by themselves (log apply, migration, ...), or a transient failure;
- exit code 1: failed, or not ready for a reason that needs an operator.

`line` is the one-line reason for stderr; `payload` is the `--json` document (shape below, version 1):

    {"version": 1, "command": "check"|"start"|"end", "vm": str, "status": "ready"|"not_ready"|"done"|"failed",
     "exit_code": 0|75|1, "transient": bool, "reason": str,
     "readiness": {...Readiness.to_dict()} | null, "decision": {...Decision.to_dict()} | null,
     "window": {...Window.to_dict()} | null}

The click command that prints these is wired elsewhere; this module only maps results, so it stays pure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

from jobs.backup.conditions import Readiness
from jobs.backup.retry import Decision, Outcome
from jobs.backup.window import Window

JSON_VERSION = 1
MAX_LINE = 400


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    TRY_LATER = 75  # EX_TEMPFAIL


class Command(StrEnum):
    CHECK = "check"
    START = "start"
    END = "end"


@dataclass(frozen=True)
class CliResult:
    exit_code: ExitCode
    line: str
    payload: dict[str, Any]

    def json_text(self) -> str:
        return json.dumps(self.payload, sort_keys=True)


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


def _result(command: Command, vm: str, status: str, code: ExitCode, reason: str, *, transient: bool = False,
            readiness: Readiness | None = None, decision: Decision | None = None,
            window: Window | None = None) -> CliResult:
    line = _one_line(f"{command.value} {vm}: {status.replace('_', ' ')}: {reason}")
    payload = {
        "version": JSON_VERSION, "command": command.value, "vm": vm, "status": status,
        "exit_code": int(code), "transient": transient, "reason": _one_line(reason),
        "readiness": readiness.to_dict() if readiness else None,
        "decision": decision.to_dict() if decision else None,
        "window": window.to_dict() if window else None,
    }
    return CliResult(code, line, payload)


def check_result(readiness: Readiness, decision: Decision | None = None) -> CliResult:
    """`backup check`: from the last readiness and, when the CLI retried, the retry decision."""
    if readiness.ready:
        return _result(Command.CHECK, readiness.vm, "ready", ExitCode.OK, readiness.summary(),
                       readiness=readiness, decision=decision)
    if decision is not None and decision.outcome is Outcome.DONE:
        raise ValueError("a DONE decision cannot come with a not-ready readiness")
    transient = decision.transient if decision is not None else readiness.transient
    reason = decision.reason if decision is not None else readiness.summary()
    code = ExitCode.TRY_LATER if transient else ExitCode.FAILED
    return _result(Command.CHECK, readiness.vm, "not_ready", code, reason, transient=transient,
                   readiness=readiness, decision=decision)


def window_started_result(window: Window) -> CliResult:
    """`backup start`: the window is recorded and replication paused on `window.side`."""
    reason = (f"replication paused on the {window.side.value} ({window.host}) until "
              f"{window.end.isoformat()}; it is resumed then even if this job is not around")
    return _result(Command.START, window.vm, "done", ExitCode.OK, reason, window=window)


def window_ended_result(window: Window, verified: str) -> CliResult:
    """`backup end`: replication resumed, and what the caller verified (``Resumed.text()``)."""
    reason = f"replication resumed on the {window.side.value} ({window.host}): {verified}"
    return _result(Command.END, window.vm, "done", ExitCode.OK, reason, window=window)


def failure_result(command: Command | str, vm: str, message: str, *, transient: bool = False,
                   readiness: Readiness | None = None, window: Window | None = None) -> CliResult:
    """Any failure: an unreachable host is typically transient (75), a refused request is not (1)."""
    code = ExitCode.TRY_LATER if transient else ExitCode.FAILED
    return _result(Command(command), vm, "failed", code, message, transient=transient,
                   readiness=readiness, window=window)
