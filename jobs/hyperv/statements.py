"""What one Hyper-V call sends: pipelines as the statements of one PowerShell invocation, and their cache key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jobs.hyperv.commands import Pipeline, sent_parameters


@dataclass(frozen=True)
class Statements:
    """Pipelines sent as the statements of one PowerShell invocation (``add_statement``, not script text).

    One Command + Receive + Signal serves them all, so a two-pipeline operation costs the exchanges of
    one. Outputs arrive as one stream, in statement order; a terminating error ends the invocation.
    """

    pipes: tuple[Pipeline, ...]

    @property
    def first_cmdlet(self) -> str:
        return self.pipes[0].commands[0].cmdlet

    @property
    def mutating(self) -> bool:
        return any(p.mutating for p in self.pipes)

    def render(self) -> str:
        return "; ".join(p.render() for p in self.pipes)

    def failed_command(self) -> str:
        return " / ".join(dict.fromkeys(p.commands[-1].cmdlet for p in self.pipes))


def as_statements(pipe: Pipeline | Sequence[Pipeline]) -> Statements:
    pipes = (pipe,) if isinstance(pipe, Pipeline) else tuple(pipe)
    if not pipes or any(not p.commands for p in pipes):
        raise ValueError("nothing to run: every pipeline needs a command")
    return Statements(pipes)


_PLAIN = (str, int, float, bool, type(None))


def pipeline_key(pipe: Statements) -> str | None:
    """The commands and parameter values as sent (types included), or None when a value is not plain data."""
    sent = tuple(tuple((cmd.cmdlet, sent_parameters(cmd)) for cmd in p.commands) for p in pipe.pipes)
    for statement in sent:
        for _, params in statement:
            for _, value in params:
                items = value if isinstance(value, (list, tuple)) else (value,)
                if not all(isinstance(v, _PLAIN) for v in items):
                    return None
    return repr(sent)
