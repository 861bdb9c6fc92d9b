"""How jobs reach users without knowing about Slack: the chat side installs the implementations at start-up.

Ports, each with a do-nothing default so a process with nothing installed (e.g. `rq worker` run by hand)
still runs every job and chore: `Reporter` (one message per request), `StepReporter` (the card of a
multi-step operation and its approval), `RecoveryReporter` (the live card of a site/host/plan failover),
`AlertPoster` (replica-health notifications), `DrillReporter` (failover drills) and `FileUploader` (charts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")


class _Installed(Generic[T]):
    """The process-wide implementation of one port, set at start-up (before forking horses)."""

    def __init__(self, default: T) -> None:
        self.value = default


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


_reporter: _Installed[Reporter] = _Installed(NoReporter())


def install(reporter: Reporter) -> None:
    """Set the process-wide reporter (called once at worker / server start-up, before forking horses)."""
    _reporter.value = reporter


def current() -> Reporter:
    return _reporter.value


class StepReporter(Protocol):
    """Progress of a multi-step operation (a failover) on its one card: each step, then one outcome.

    ``card`` is plain JSON data the chat side gave the job (where the card is and what it shows); ``step`` and
    ``outcome`` are JSON-able dicts built by the job (``jobs.failover.run``).
    """

    def preview(self, card: dict[str, Any], preview_id: str, data: dict[str, Any]) -> None: ...

    def step(self, card: dict[str, Any], step: dict[str, Any]) -> None: ...

    def outcome(self, card: dict[str, Any], outcome: dict[str, Any]) -> None: ...

    def expired(self, card: dict[str, Any]) -> None:
        """The approval request on this card expired without a decision (``card``: approval_id, channel, ts,
        kind, vm, requester)."""
        ...


class NoStepReporter:
    def preview(self, card: dict[str, Any], preview_id: str, data: dict[str, Any]) -> None:
        return None

    def step(self, card: dict[str, Any], step: dict[str, Any]) -> None:
        return None

    def outcome(self, card: dict[str, Any], outcome: dict[str, Any]) -> None:
        return None

    def expired(self, card: dict[str, Any]) -> None:
        return None


_step_reporter: _Installed[StepReporter] = _Installed(NoStepReporter())


def install_steps(reporter: StepReporter) -> None:
    """Set the process-wide step reporter (worker start-up, before forking horses)."""
    _step_reporter.value = reporter


def current_steps() -> StepReporter:
    return _step_reporter.value


class RecoveryReporter(Protocol):
    """The one live card of a recovery run (site/host/plan failover).

    ``card`` is {"channel", "ts"} of the approval card; ``run`` is ``jobs.recovery.progress.RunProgress.snapshot()``
    (the plan, kind, status, every VM's state and, once finished, the summary). Each call redraws the whole card;
    the implementation paces its writes within Slack's limits, and callers call it at most every few seconds.
    """

    def progress(self, card: dict[str, Any], run: dict[str, Any]) -> None: ...

    def finished(self, card: dict[str, Any], run: dict[str, Any]) -> None:
        """The run ended (summary, next actions), or its worker died (status "abandoned": states and Resume)."""
        ...


class NoRecoveryReporter:
    def progress(self, card: dict[str, Any], run: dict[str, Any]) -> None:
        return None

    def finished(self, card: dict[str, Any], run: dict[str, Any]) -> None:
        return None


_recovery_reporter: _Installed[RecoveryReporter] = _Installed(NoRecoveryReporter())


def install_recovery(reporter: RecoveryReporter) -> None:
    """Set the process-wide recovery card reporter (worker start-up, before forking horses)."""
    _recovery_reporter.value = reporter


def current_recovery() -> RecoveryReporter:
    return _recovery_reporter.value


class AlertPoster(Protocol):
    """Replica-health notifications to their channels.

    ``notes`` are ``jobs.monitor.notifications.Notification``s and ``engine`` the ``jobs.monitor.state.AlertEngine``
    that emitted them; typed loosely here because every feature imports this module, so it imports none of them.
    """

    def deliver(self, notes: Sequence[Any], engine: Any) -> int:
        """Send the notifications (paced); returns how many writes it made. After posting a new message it
        stores where with ``engine.set_message_ref``, so later notifications update that message."""
        ...


class NoAlertPoster:
    """Nothing installed: the alert state is still kept in Redis, nobody is told."""

    def deliver(self, notes: Sequence[Any], engine: Any) -> int:
        return 0


_poster: _Installed[AlertPoster] = _Installed(NoAlertPoster())


def install_poster(poster: AlertPoster) -> None:
    """Set the process-wide alert poster (worker and monitor start-up, before forking horses)."""
    _poster.value = poster


def current_poster() -> AlertPoster:
    return _poster.value


class RecoveryPreviewer(Protocol):
    """The preview of a site, host or plan failover: one message (groups in order, totals, a Request button) with
    the details in its thread. ``data`` is ``jobs.recovery.preview.preview_plan``'s dict, or {"error": ...}."""

    def preview(self, reply: ReplyTo, preview_id: str, data: dict[str, Any]) -> None: ...

    def changed(self, card: dict[str, Any], approval_id: str, reply: ReplyTo, preview_id: str, data: dict[str, Any],
                vms: list[str]) -> None:
        """The approved plan no longer matches the fleet (``vms`` changed): end the approval as changed, say so on
        its card (``card``: channel, ts) and post ``data`` as a fresh preview to request again."""
        ...


class NoRecoveryPreviewer:
    def preview(self, reply: ReplyTo, preview_id: str, data: dict[str, Any]) -> None:
        return None

    def changed(self, card: dict[str, Any], approval_id: str, reply: ReplyTo, preview_id: str, data: dict[str, Any],
                vms: list[str]) -> None:
        return None


_recovery_previewer: _Installed[RecoveryPreviewer] = _Installed(NoRecoveryPreviewer())


def install_recovery_previewer(previewer: RecoveryPreviewer) -> None:
    """Set the process-wide recovery previewer (worker start-up, before forking horses)."""
    _recovery_previewer.value = previewer


def current_recovery_previewer() -> RecoveryPreviewer:
    return _recovery_previewer.value
class DrillReporter(Protocol):
    """Failover drills: progress and the report to the requester's channel, and notices to the alert channels.

    ``report`` is the JSON-able drill report (``jobs.recovery.drill_report``); the chat side posts its summary and
    attaches the whole report as a file (audit evidence)."""

    def progress(self, drill_id: str, reply: ReplyTo, text: str) -> None: ...

    def report(self, drill_id: str, reply: ReplyTo, report: dict[str, Any]) -> None: ...

    def notice(self, notice_id: str, text: str, urgent: bool) -> None:
        """A drill problem nobody asked about: ``urgent`` (a test VM left behind) goes to on-call, else the
        low-priority channel (a plan not drilled within its period, a scheduled drill waiting for an operator)."""
        ...


class NoDrillReporter:
    def progress(self, drill_id: str, reply: ReplyTo, text: str) -> None:
        return None

    def report(self, drill_id: str, reply: ReplyTo, report: dict[str, Any]) -> None:
        return None

    def notice(self, notice_id: str, text: str, urgent: bool) -> None:
        return None


_drills: _Installed[DrillReporter] = _Installed(NoDrillReporter())


def install_drills(reporter: DrillReporter) -> None:
    """Set the process-wide drill reporter (worker and monitor start-up, before forking horses)."""
    _drills.value = reporter


def current_drills() -> DrillReporter:
    return _drills.value


class FileUploader(Protocol):
    """A file for the requester (charts): uploaded to the request's channel with a one-line comment."""

    def upload(self, reply: ReplyTo, filename: str, content: bytes, title: str, comment: str) -> None: ...


class NoFileUploader:
    def upload(self, reply: ReplyTo, filename: str, content: bytes, title: str, comment: str) -> None:
        return None


_uploader: _Installed[FileUploader] = _Installed(NoFileUploader())


def install_uploader(uploader: FileUploader) -> None:
    """Set the process-wide file uploader (worker start-up, before forking horses)."""
    _uploader.value = uploader


def current_uploader() -> FileUploader:
    return _uploader.value
