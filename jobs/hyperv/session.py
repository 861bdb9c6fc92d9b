"""One PowerShell session per Hyper-V host: a WSMan + RunspacePool reused across calls, one thread at a time.

Every call has an absolute deadline. pypsrp has none of its own (psrp.md §7), so ``DeadlineWSMan``
(``transport.py``) bounds each HTTP exchange by the time left and turns off pypsrp's Receive retries; the pipeline
is driven with ``begin_invoke`` / ``poll_invoke`` and stopped (ctrl_c) when the deadline passes. A shell that is
gone or a pool that broke is rebuilt once per call, transparently.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog
from pypsrp.exceptions import AuthenticationError, InvalidPSRPOperation, InvalidRunspacePoolStateError, WSManFaultError
from pypsrp.powershell import DEFAULT_CONFIGURATION_NAME, PowerShell, PSInvocationState, RunspacePool

from jobs.hyperv.clixml import FastSerializer, use_fast_deserializer
from jobs.hyperv.commands import Pipeline, sent_parameters
from jobs.hyperv.errors import ConfigError, ErrorDetail, HostTimeout, HyperVError, PowerShellError
from jobs.hyperv.hosts import HostConfig, InventoryError
from jobs.hyperv.session_errors import config_reason, error_detail, shell_gone, translate_error
from jobs.hyperv.settings import JobSettings
from jobs.hyperv.statements import Statements, as_statements, pipeline_key
from jobs.hyperv.transport import GRACE_S, DeadlineHit, DeadlineWSMan, build_wsman
from jobs.metrics import observe_host_call

__all__ = ["GRACE_S", "HostSession", "WatchStopped", "build_wsman", "translate_error"]

log = structlog.get_logger(__name__)

# Closing a finished pipeline is one more exchange (Signal terminate) the caller need not wait for: it runs
# here, and the session's next call (or close) waits for it before touching the shell again. As many
# threads as a fleet-wide call has hosts in flight (they only wait on the network), else closes queue up.
_CLOSER_THREADS = 128
_closer_pool: ThreadPoolExecutor | None = None
_closer_lock = threading.Lock()


def _closer() -> ThreadPoolExecutor:
    """This process's closer threads: a forked child (an RQ work horse) must not inherit its parent's pool."""
    global _closer_pool
    with _closer_lock:
        if _closer_pool is None:
            _closer_pool = ThreadPoolExecutor(max_workers=_CLOSER_THREADS, thread_name_prefix="hvbot-pipeline-close")
        return _closer_pool


def _forget_closer_in_child() -> None:
    global _closer_pool, _closer_lock
    _closer_pool, _closer_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_closer_in_child)



class WatchStopped(Exception):
    """``run_watched``'s watcher asked to stop the pipeline (e.g. a Cancel button)."""


@dataclass
class _Call:
    """One invocation under way: when it started and, once it succeeded, its output."""

    started: float
    output: list[Any] = field(default_factory=list)

    def seconds(self) -> float:
        return time.monotonic() - self.started


class _ShellGone(Exception):
    def __init__(self, cause: BaseException, started: bool) -> None:
        super().__init__(type(cause).__name__)
        self.cause = cause
        self.started = started


class HostSession:
    """The reusable PowerShell session of one host. Thread-safe: calls are serialised by a lock."""

    def __init__(self, config: HostConfig, settings: JobSettings | None = None) -> None:
        self.config = config
        self.settings = settings or JobSettings()
        self._lock = threading.Lock()
        self._wsman: DeadlineWSMan | None = None
        self._pool: RunspacePool | None = None
        self._exchanges_closed = 0  # exchanges of discarded WSMan objects
        self._pending_close: Future[None] | None = None  # the last finished pipeline's deferred close
        self.rebuilds = 0

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def restricted(self) -> bool:
        """True unless the host uses the default endpoint: a named configuration may be JEA (NoLanguage)."""
        name = self.config.configuration
        return name is not None and name.lower() != DEFAULT_CONFIGURATION_NAME.lower()

    @property
    def exchanges(self) -> int:
        """HTTP exchanges sent by this session so far (all pools)."""
        return self._exchanges_closed + (self._wsman.exchanges if self._wsman else 0)

    def run(self, pipe: Pipeline | Sequence[Pipeline], *, deadline_s: float | None = None,
            deadline_at: float | None = None) -> list[Any]:
        """Output objects of ``pipe`` (or of several pipelines sent as statements of one invocation).

        Raises a ``HyperVError`` subclass (never a pypsrp/requests error).
        """
        statements = as_statements(pipe)
        limit = deadline_s if deadline_s is not None else self.settings.deadline_s
        at = deadline_at if deadline_at is not None else time.monotonic() + limit
        self._acquire(statements, max(0.0, at - time.monotonic()), limit)
        try:
            with self._invocation(statements, at, limit) as call:
                self._settle()
                call.output = self._run_rebuilding(statements, at)
            return call.output
        finally:
            self._lock.release()

    @property
    def is_open(self) -> bool:
        """True while the session holds an opened runspace pool (the next call costs no pool open)."""
        return self._pool is not None

    def open(self, *, deadline_s: float | None = None) -> None:
        """Open the runspace pool now (no command), so the first real call does not pay for it."""
        limit = deadline_s if deadline_s is not None else self.settings.deadline_s
        at = time.monotonic() + limit
        if not self._lock.acquire(timeout=limit):
            raise HostTimeout.build(self.name, "waiting for the previous call (opening the session)", limit)
        try:
            self._settle()
            self._ensure_pool(at)
        except HyperVError:
            raise
        except Exception as exc:  # noqa: BLE001 - typed, secret-free errors only
            self._discard(graceful=False)
            raise translate_error(exc, self.config, "opening the session", limit) from None
        finally:
            self._lock.release()

    def run_watched(self, pipe: Pipeline, watch: Callable[[list[Any]], bool], *, deadline_s: float) -> list[Any]:
        """A long pipeline (e.g. Export-VMSnapshot): after every poll ``watch(progress records so far)`` runs;
        when it returns False the pipeline is stopped and ``WatchStopped`` raised. Never re-sent."""
        statements = as_statements(pipe)
        at = time.monotonic() + deadline_s
        self._acquire(statements, deadline_s, deadline_s)
        try:
            with self._invocation(statements, at, deadline_s) as call:
                self._settle()
                call.output = self._invoke(self._ensure_pool(at), statements, at, watch)
            return call.output
        finally:
            self._lock.release()

    def settle(self) -> None:
        """Wait until the last call's pipeline is closed on the host (exchange counts are then final)."""
        with self._lock:
            self._settle()

    def close(self) -> None:
        with self._lock:
            self._settle()
            self._discard(graceful=True)

    def _acquire(self, statements: Statements, wait_s: float, limit: float) -> None:
        if not self._lock.acquire(timeout=wait_s):
            raise HostTimeout.build(self.name, f"waiting for the previous call ({statements.first_cmdlet})", limit)

    # -- internals (lock held) -------------------------------------------------------------------

    @contextmanager
    def _invocation(self, statements: Statements, at: float, limit: float) -> Iterator[_Call]:
        """One invocation, logged and counted as a host call (`invoke`): `ok`, `stopped` when its watcher stopped
        it, else the kind of the typed error it leaves with (anything else is translated to one here)."""
        call = _Call(time.monotonic())
        try:
            yield call
        except WatchStopped:
            log.info("hyperv.call_stopped", host=self.name, command=statements.render(),
                     seconds=round(call.seconds(), 3))
            observe_host_call(self.name, "invoke", "stopped", call.seconds())
            raise
        except HyperVError as err:
            self._failed(statements, call, err)
            raise
        except Exception as exc:  # noqa: BLE001 - every failure leaves as a typed, secret-free error
            failure = self._translate(exc.cause if isinstance(exc, _ShellGone) else exc, statements, at, limit)
            self._failed(statements, call, failure)
            raise failure from None
        log.info("hyperv.call", host=self.name, command=statements.render(), objects=len(call.output),
                 seconds=round(call.seconds(), 3))
        observe_host_call(self.name, "invoke", "ok", call.seconds())

    def _failed(self, statements: Statements, call: _Call, err: HyperVError) -> None:
        log.warning("hyperv.call_failed", host=self.name, command=statements.render(), kind=err.kind,
                    error=err.message, seconds=round(call.seconds(), 3))
        observe_host_call(self.name, "invoke", err.kind, call.seconds())

    def _run_rebuilding(self, pipe: Statements, at: float) -> list[Any]:
        try:
            return self._invoke(self._ensure_pool(at), pipe, at)
        except _ShellGone as gone:
            self._discard(graceful=False)
            # Rebuild once. A mutating pipeline the host may already have started is never re-sent.
            if gone.started and pipe.mutating:
                raise gone.cause from None
            self.rebuilds += 1
            log.info("hyperv.session_rebuilt", host=self.name, cause=str(gone))
            try:
                return self._invoke(self._ensure_pool(at), pipe, at)
            except _ShellGone as again:
                raise again.cause from None

    def _ensure_pool(self, at: float) -> RunspacePool:
        if self._pool is not None and self._wsman is not None:
            self._wsman.deadline = at
            return self._pool
        started = time.monotonic()
        try:
            self._pool = self._open_pool(at)
        except Exception as exc:  # counted with the kind the caller will raise
            kind = translate_error(exc, self.config, "opening the session", self.settings.deadline_s).kind
            observe_host_call(self.name, "open", kind, time.monotonic() - started)
            raise
        observe_host_call(self.name, "open", "ok", time.monotonic() - started)
        return self._pool

    def _open_pool(self, at: float) -> RunspacePool:
        """A new WinRM shell and runspace pool; when it fails, nothing of it is kept."""
        try:
            wsman = build_wsman(self.config, self.settings)
        except (ValueError, InventoryError) as exc:
            raise ConfigError.build(self.name, config_reason(exc)) from None
        wsman.deadline = at
        self._wsman = wsman
        pool = RunspacePool(wsman, configuration_name=self.config.configuration or DEFAULT_CONFIGURATION_NAME)
        use_fast_deserializer(pool)  # pypsrp's deserializer made fleet-wide calls CPU-bound (clixml.py)
        try:
            pool.open()
        except BaseException:
            self._discard(graceful=False)
            raise
        return pool

    def _invoke(self, pool: RunspacePool, pipe: Statements, at: float,
                watch: Callable[[list[Any]], bool] | None = None) -> list[Any]:
        ps = PowerShell(pool)
        for i, statement in enumerate(pipe.pipes):
            if i:
                ps.add_statement()
            for cmd in statement.commands:
                ps.add_cmdlet(cmd.cmdlet)
                for name, value in sent_parameters(cmd):
                    ps.add_parameter(name, value)
        if isinstance(pool._serializer, FastSerializer) and pool.host is None:
            pool._serializer.pipeline_key = pipeline_key(pipe)
        try:
            ps.begin_invoke()
        except (WSManFaultError, InvalidPSRPOperation, InvalidRunspacePoolStateError) as exc:
            if shell_gone(exc):
                raise _ShellGone(exc, started=False) from None
            raise
        with self._closing(ps, at):
            try:
                while ps.state == PSInvocationState.RUNNING:
                    if time.monotonic() >= at:
                        raise DeadlineHit()
                    ps.poll_invoke()
                    # watch sees every poll, the last one too; only a running pipeline can be stopped
                    stop = watch is not None and not watch(list(ps.streams.progress))
                    if stop and ps.state == PSInvocationState.RUNNING:
                        raise WatchStopped()  # _closing stops the pipeline on the host
            except (WSManFaultError, InvalidPSRPOperation) as exc:
                if shell_gone(exc):
                    raise _ShellGone(exc, started=True) from None
                raise
        if ps.streams.error or ps.had_errors:
            details = tuple(error_detail(rec) for rec in ps.streams.error) or (ErrorDetail("pipeline failed", "", ""),)
            raise PowerShellError.build(self.name, pipe.failed_command(), details)
        return list(ps.output)

    @contextmanager
    def _closing(self, ps: PowerShell, at: float) -> Iterator[None]:
        """Like ``with PowerShell(pool)``, but a pipeline still running (deadline, error) is stopped first.

        A pipeline that finished is closed after the caller has its output (``_closer()``), not before.
        """
        wsman = self._wsman
        assert wsman is not None
        try:
            yield
        except BaseException:
            wsman.deadline = max(at, time.monotonic() + GRACE_S)
            try:
                if ps.state == PSInvocationState.RUNNING:
                    ps.stop()
                ps.close()
            except Exception:  # noqa: BLE001 - cannot close: the pool is suspect, rebuild it next call
                self._discard(graceful=False)
            raise
        self._pending_close = _closer().submit(_close_finished, ps, wsman)

    def _settle(self) -> None:
        """Wait for the deferred close of the previous pipeline; if it failed, the pool is suspect (lock held)."""
        pending, self._pending_close = self._pending_close, None
        if pending is None:
            return
        try:
            pending.result(timeout=GRACE_S + self.settings.read_timeout_s)
        except Exception as exc:  # noqa: BLE001 - the output was delivered; only the shell's health is in doubt
            self._discard(graceful=False)
            self.rebuilds += 1  # the next call opens a fresh pool
            log.info("hyperv.session_rebuilt", host=self.name, cause=f"closing the last pipeline: {type(exc).__name__}")

    def _discard(self, graceful: bool) -> None:
        pool, wsman = self._pool, self._wsman
        self._pool, self._wsman = None, None
        if wsman is None:
            return
        self._exchanges_closed += wsman.exchanges
        if graceful and pool is not None:
            wsman.deadline = time.monotonic() + GRACE_S
            try:
                pool.close()
            except Exception:  # noqa: BLE001 - best effort; the host drops idle shells itself
                pass
        wsman.close()

    def _translate(self, exc: BaseException, pipe: Statements, at: float, limit: float) -> HyperVError:
        if not isinstance(exc, (AuthenticationError, ValueError)):
            self._discard(graceful=False)  # after a transport/protocol failure the pool may be unusable
        return translate_error(exc, self.config, pipe.render(), limit)


def _close_finished(ps: PowerShell, wsman: DeadlineWSMan) -> None:
    """Signal terminate for a pipeline that has finished; bounded like any exchange."""
    wsman.deadline = time.monotonic() + GRACE_S
    if ps.state == PSInvocationState.RUNNING:  # cannot happen after a normal finish; never leave one running
        ps.stop()
    ps.close()
