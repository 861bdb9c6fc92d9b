"""One PowerShell session per Hyper-V host: a WSMan + RunspacePool reused across calls, one thread at a time.

Every call has an absolute deadline. pypsrp has none of its own (psrp.md §7), so ``_DeadlineWSMan``
bounds each HTTP exchange by the time left and turns off pypsrp's Receive retries; the pipeline is driven
with ``begin_invoke`` / ``poll_invoke`` and stopped (ctrl_c) when the deadline passes. A shell that is
gone or a pool that broke is rebuilt once per call, transparently.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import structlog
from pypsrp.exceptions import (
    AuthenticationError,
    InvalidPipelineStateError,
    InvalidPSRPOperation,
    InvalidRunspacePoolStateError,
    WinRMError,
    WinRMTransportError,
    WSManFaultError,
)
from pypsrp.powershell import DEFAULT_CONFIGURATION_NAME, PowerShell, PSInvocationState, RunspacePool
from pypsrp.wsman import WSMan

from jobs.hyperv.clixml import FastSerializer, use_fast_deserializer
from jobs.hyperv.commands import Pipeline, sent_parameters
from jobs.hyperv.errors import (
    AuthFailed,
    ConfigError,
    ErrorDetail,
    HostTimeout,
    HostUnreachable,
    HyperVError,
    PowerShellError,
    ProtocolError,
    WSManFault,
)
from jobs.hyperv.hosts import HostConfig, InventoryError
from jobs.hyperv.settings import JobSettings
from jobs.metrics import observe_host_call

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

SHELL_NOT_FOUND = 2150858843  # 0x8033805B: unknown ShellId, the shell is gone (psrp.md §4 #13)
GRACE_S = 0.5  # extra time for stop/close after the deadline, and HTTP slack on the last exchange


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


class WatchStopped(Exception):
    """``run_watched``'s watcher asked to stop the pipeline (e.g. a Cancel button)."""


class _DeadlineHit(Exception):
    """The call's deadline passed before an HTTP exchange could start."""


class _ShellGone(Exception):
    def __init__(self, cause: BaseException, started: bool) -> None:
        super().__init__(type(cause).__name__)
        self.cause = cause
        self.started = started


class _DeadlineWSMan(WSMan):
    """WSMan whose every exchange fits inside ``deadline`` (time.monotonic) and is counted."""

    def __init__(self, settings: JobSettings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.deadline = time.monotonic() + settings.deadline_s
        self.exchanges = 0

    def invoke(self, action: str, resource_uri: str, resource: Any, option_set: Any = None,
               selector_set: Any = None, timeout: int | None = None, *, retries_on_read_timeout: int = 0) -> Any:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise _DeadlineHit()
        s = self.settings
        # A Receive long-polls for operation_timeout; the HTTP read must outlast it but not the deadline.
        self.operation_timeout = max(1, min(s.operation_timeout_s, int(remaining)))
        # pypsrp annotates these as int; requests takes float seconds, which a deadline needs
        self.transport.read_timeout = min(s.read_timeout_s, self.operation_timeout + 1.0,  # type: ignore[assignment]
                                          remaining + GRACE_S)
        self.transport.connection_timeout = min(s.connection_timeout_s,  # type: ignore[assignment]
                                                remaining / (s.reconnection_retries + 1) + 0.05)
        self.exchanges += 1
        session = self.transport.session
        if session is not None and session.trust_env:
            # pypsrp merged the environment (CA bundle, proxies) when it built the session; re-reading
            # os.environ on every request cost ~3 ms of CPU per exchange.
            session.trust_env = False
        # timeout=None: pypsrp would otherwise set the HTTP timeout to timeout+2, past our deadline.
        return super().invoke(action, resource_uri, resource, option_set, selector_set, None,
                              retries_on_read_timeout=0)


def build_wsman(config: HostConfig, settings: JobSettings) -> _DeadlineWSMan:
    parts = urlsplit(config.url)
    ssl = parts.scheme == "https"
    cert_validation: bool | str = str(config.ca_file) if config.ca_file else config.verify_tls
    return _DeadlineWSMan(
        settings, server=parts.hostname or "", port=parts.port or (5986 if ssl else 5985),
        path=parts.path.lstrip("/") or "wsman", ssl=ssl, auth=config.auth, username=config.username,
        password=config.secret(), cert_validation=cert_validation,
        # Basic over plain HTTP only exists in the lab; every other auth mode keeps message encryption.
        encryption="never" if (not ssl and config.auth == "basic") else "auto",
        operation_timeout=settings.operation_timeout_s, connection_timeout=int(settings.connection_timeout_s) or 1,
        read_timeout=int(settings.read_timeout_s) or 1, reconnection_retries=settings.reconnection_retries,
        reconnection_backoff=settings.reconnection_backoff_s, no_proxy=config.proxy is None, proxy=config.proxy,
    )


class HostSession:
    """The reusable PowerShell session of one host. Thread-safe: calls are serialised by a lock."""

    def __init__(self, config: HostConfig, settings: JobSettings | None = None) -> None:
        self.config = config
        self.settings = settings or JobSettings()
        self._lock = threading.Lock()
        self._wsman: _DeadlineWSMan | None = None
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
        budget = max(0.0, at - time.monotonic())
        if not self._lock.acquire(timeout=budget):
            raise HostTimeout.build(self.name, f"waiting for the previous call ({statements.first_cmdlet})", limit)
        started = time.monotonic()
        try:
            self._settle()
            out = self._run_rebuilding(statements, at)
            log.info("hyperv.call", host=self.name, command=statements.render(), objects=len(out),
                     seconds=round(time.monotonic() - started, 3))
            observe_host_call(self.name, "invoke", "ok", time.monotonic() - started)
            return out
        except HyperVError as err:
            log.warning("hyperv.call_failed", host=self.name, command=statements.render(), kind=err.kind,
                        error=err.message, seconds=round(time.monotonic() - started, 3))
            observe_host_call(self.name, "invoke", err.kind, time.monotonic() - started)
            raise
        except Exception as exc:  # noqa: BLE001 - every failure leaves as a typed, secret-free error
            failure = self._translate(exc, statements, at, limit)
            log.warning("hyperv.call_failed", host=self.name, command=statements.render(), kind=failure.kind,
                        error=failure.message, seconds=round(time.monotonic() - started, 3))
            observe_host_call(self.name, "invoke", failure.kind, time.monotonic() - started)
            raise failure from None
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
        if not self._lock.acquire(timeout=deadline_s):
            raise HostTimeout.build(self.name, f"waiting for the previous call ({statements.first_cmdlet})", deadline_s)
        try:
            self._settle()
            return self._invoke(self._ensure_pool(at), statements, at, watch)
        except (HyperVError, WatchStopped):
            raise
        except _ShellGone as gone:
            self._discard(graceful=False)
            raise translate_error(gone.cause, self.config, statements.render(), deadline_s) from None
        except Exception as exc:  # noqa: BLE001 - typed, secret-free errors only
            raise self._translate(exc, statements, at, deadline_s) from None
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

    # -- internals (lock held) -------------------------------------------------------------------

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
            raise ConfigError.build(self.name, _config_reason(exc)) from None
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
            if _shell_gone(exc):
                raise _ShellGone(exc, started=False) from None
            raise
        with self._closing(ps, at):
            try:
                while ps.state == PSInvocationState.RUNNING:
                    if time.monotonic() >= at:
                        raise _DeadlineHit()
                    ps.poll_invoke()
                    # watch sees every poll, the last one too; only a running pipeline can be stopped
                    if watch is not None and not watch(list(ps.streams.progress)) and ps.state == PSInvocationState.RUNNING:
                        raise WatchStopped()  # _closing stops the pipeline on the host
            except (WSManFaultError, InvalidPSRPOperation) as exc:
                if _shell_gone(exc):
                    raise _ShellGone(exc, started=True) from None
                raise
        if ps.streams.error or ps.had_errors:
            details = tuple(_detail(rec) for rec in ps.streams.error) or (ErrorDetail("pipeline failed", "", ""),)
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


def _close_finished(ps: PowerShell, wsman: _DeadlineWSMan) -> None:
    """Signal terminate for a pipeline that has finished; bounded like any exchange."""
    wsman.deadline = time.monotonic() + GRACE_S
    if ps.state == PSInvocationState.RUNNING:  # cannot happen after a normal finish; never leave one running
        ps.stop()
    ps.close()


def translate_error(exc: BaseException, config: HostConfig, action: str, limit: float) -> HyperVError:
    """Map pypsrp/requests exceptions to typed errors without copying their (possibly secret) text."""
    host = config.name
    if isinstance(exc, HyperVError):
        return exc
    if isinstance(exc, (_DeadlineHit, requests.exceptions.Timeout)):
        return HostTimeout.build(host, action, limit)
    if isinstance(exc, requests.exceptions.SSLError):
        return HostUnreachable.build(host, "TLS handshake failed; check the certificate, ca_file and verify_tls")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return HostUnreachable.build(host, _connection_reason(exc))
    if isinstance(exc, AuthenticationError):
        return AuthFailed.build(host, config.auth, config.username)
    if isinstance(exc, WSManFaultError):
        return WSManFault.build(host, exc.code, exc.reason)
    if isinstance(exc, WinRMTransportError):
        return ProtocolError.build(host, f"HTTP {exc.code} from the WinRM endpoint")
    if isinstance(exc, (InvalidPSRPOperation, InvalidRunspacePoolStateError, InvalidPipelineStateError,
                        WinRMError)):
        return ProtocolError.build(host, type(exc).__name__)
    if isinstance(exc, (ValueError, InventoryError)):
        return ConfigError.build(host, _config_reason(exc))
    return ProtocolError.build(host, f"unexpected {type(exc).__name__}")


def _shell_gone(exc: BaseException) -> bool:
    if isinstance(exc, WSManFaultError):
        # unknown shell, or the per-shell command quota (no numeric code, psrp.md §4 #10)
        return exc.code == SHELL_NOT_FOUND or exc.code == "w:InternalError"
    return isinstance(exc, (InvalidPSRPOperation, InvalidRunspacePoolStateError))


def _connection_reason(exc: BaseException) -> str:
    text = str(exc)
    if "NameResolution" in text or "Name or service not known" in text or "getaddrinfo" in text:
        return "the host name does not resolve"
    if "refused" in text.lower():
        return "connection refused"
    if "reset" in text.lower() or "aborted" in text.lower():
        return "the connection was dropped"
    return "network error"


def _config_reason(exc: BaseException) -> str:
    if isinstance(exc, InventoryError):
        return str(exc)
    return "invalid WinRM settings (auth/encryption/TLS combination)"


def _detail(rec: Any) -> ErrorDetail:
    exception = getattr(rec, "exception", None)
    message = None
    if exception is not None:
        message = getattr(exception, "adapted_properties", {}).get("Message")
    return ErrorDetail(
        message=str(message or rec),
        fq_error_id=str(getattr(rec, "fq_error", "") or ""),
        category=_category(getattr(rec, "category", None)),
        target=getattr(rec, "target_name", None),
    )


def _category(value: Any) -> str:
    try:
        from psrpcore.types import ErrorCategory

        return ErrorCategory(int(value)).name
    except (TypeError, ValueError):
        return "" if value is None else str(value)
