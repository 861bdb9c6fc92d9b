"""Install every reporter a worker process needs, so `jobs` can report without importing Slack."""

from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Iterator

from bot.listeners import failover as failover_flow
from bot.runtime import Runtime
from jobs import ports as reporting


def install_reporters(runtime: Runtime) -> None:
    """Results and progress (SlackReporter) and failover step cards (CardReporter)."""
    reporting.install(runtime.reporter)
    reporting.install_steps(failover_flow.CardReporter(runtime))


@contextmanager
def reporters_installed(runtime: Runtime) -> Iterator[None]:
    """The same, restoring the previous reporters afterwards (the demo and tests run in one process)."""
    previous, previous_steps = reporting.current(), reporting.current_steps()
    install_reporters(runtime)
    try:
        yield
    finally:
        reporting.install(previous)
        reporting.install_steps(previous_steps)
