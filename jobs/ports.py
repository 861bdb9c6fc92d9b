"""How workers report progress and results, without knowing about Slack: `bot` installs the implementation."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class ReplyTo:
    """Where a request's answer goes. Plain strings only: it travels in RQ job kwargs and meta (JSON)."""

    channel: str
    user: str
    command: str  # the canonical command text, for "working on …" lines
    response_url: str = ""
    here: bool = False  # True: one channel message updated in place; False: only the requester sees it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReplyTo:
        return cls(
            channel=str(data.get("channel", "")),
            user=str(data.get("user", "")),
            command=str(data.get("command", "")),
            response_url=str(data.get("response_url", "")),
            here=bool(data.get("here", False)),
        )


class Reporter(Protocol):
    """One request, one message: `started` once, then exactly one of `finished` / `failed`."""

    def started(self, job_id: str, reply: ReplyTo) -> None: ...

    def finished(self, job_id: str, reply: ReplyTo, report: dict[str, Any]) -> None: ...

    def failed(self, job_id: str, reply: ReplyTo, message: str) -> None: ...

    def update(self, key: str, reply: ReplyTo, text: str, actions: list[dict[str, str]] | None = None) -> None:
        """In-place progress of a long or retried request: the first call posts one message under `key`, later
        calls (from any job or process) update it. `actions` are plain {"action", "label", "value"} buttons."""
        ...


class NoReporter:
    """Used when nothing was installed: results stay in RQ only (e.g. `rq worker` run by hand)."""

    def started(self, job_id: str, reply: ReplyTo) -> None:
        return None

    def finished(self, job_id: str, reply: ReplyTo, report: dict[str, Any]) -> None:
        return None

    def failed(self, job_id: str, reply: ReplyTo, message: str) -> None:
        return None

    def update(self, key: str, reply: ReplyTo, text: str, actions: list[dict[str, str]] | None = None) -> None:
        return None


_installed: Reporter = NoReporter()


def install(reporter: Reporter) -> None:
    """Set the process-wide reporter (called once at worker / server start-up, before forking horses)."""
    global _installed
    _installed = reporter


def current() -> Reporter:
    return _installed


class StepReporter(Protocol):
    """Progress of a multi-step operation (a failover) on its one card: each step, then one outcome.

    ``card`` is plain JSON data the bot gave the job (where the card is and what it shows); ``step`` and
    ``outcome`` are JSON-able dicts built by the job (``jobs.failover.run``).
    """

    def preview(self, card: dict[str, Any], preview_id: str, data: dict[str, Any]) -> None: ...

    def step(self, card: dict[str, Any], step: dict[str, Any]) -> None: ...

    def outcome(self, card: dict[str, Any], outcome: dict[str, Any]) -> None: ...


class NoStepReporter:
    def preview(self, card: dict[str, Any], preview_id: str, data: dict[str, Any]) -> None:
        return None

    def step(self, card: dict[str, Any], step: dict[str, Any]) -> None:
        return None

    def outcome(self, card: dict[str, Any], outcome: dict[str, Any]) -> None:
        return None


_installed_steps: StepReporter = NoStepReporter()


def install_steps(reporter: StepReporter) -> None:
    """Set the process-wide step reporter (worker start-up, before forking horses)."""
    global _installed_steps
    _installed_steps = reporter


def current_steps() -> StepReporter:
    return _installed_steps
