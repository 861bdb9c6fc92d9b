"""What went wrong in a host call, as hvbot's typed errors: pypsrp and requests exceptions are mapped without
copying their text (it can hold secrets), and a PowerShell error record becomes an ``ErrorDetail``."""

from __future__ import annotations

from typing import Any

import requests
from psrpcore.types import ErrorCategory
from pypsrp.exceptions import (
    AuthenticationError,
    InvalidPipelineStateError,
    InvalidPSRPOperation,
    InvalidRunspacePoolStateError,
    WinRMError,
    WinRMTransportError,
    WSManFaultError,
)

from jobs.hyperv.errors import (
    AuthFailed,
    ConfigError,
    ErrorDetail,
    HostTimeout,
    HostUnreachable,
    HyperVError,
    ProtocolError,
    WSManFault,
)
from jobs.hyperv.hosts import HostConfig, InventoryError
from jobs.hyperv.transport import DeadlineHit

SHELL_NOT_FOUND = 2150858843  # 0x8033805B: unknown ShellId, the shell is gone (psrp.md §4 #13)


def translate_error(exc: BaseException, config: HostConfig, action: str, limit: float) -> HyperVError:
    """Map pypsrp/requests exceptions to typed errors without copying their (possibly secret) text."""
    host = config.name
    if isinstance(exc, HyperVError):
        return exc
    if isinstance(exc, (DeadlineHit, requests.exceptions.Timeout)):
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
        return ConfigError.build(host, config_reason(exc))
    return ProtocolError.build(host, f"unexpected {type(exc).__name__}")


def shell_gone(exc: BaseException) -> bool:
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


def config_reason(exc: BaseException) -> str:
    if isinstance(exc, InventoryError):
        return str(exc)
    return "invalid WinRM settings (auth/encryption/TLS combination)"


def error_detail(rec: Any) -> ErrorDetail:
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
        return ErrorCategory(int(value)).name
    except (TypeError, ValueError):
        return "" if value is None else str(value)
