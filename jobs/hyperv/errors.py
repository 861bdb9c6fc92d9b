"""Typed per-host errors: one clear sentence each (host, what failed, what to check); never a secret.

Every error is built from already-sanitised parts; the raw exception text of requests/pypsrp is never
copied in verbatim because it may carry URLs, user names or envelope fragments.
"""

from __future__ import annotations

from dataclasses import dataclass


class HyperVError(Exception):
    """Base of every per-host failure; ``kind`` is a stable short name used in reports."""

    kind = "error"

    def __init__(self, host: str, message: str) -> None:
        super().__init__(message)
        self.host = host
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(host={self.host!r}, message={self.message!r})"

    def to_dict(self) -> dict[str, str]:
        return {"host": self.host, "kind": self.kind, "message": self.message}


class HostUnreachable(HyperVError):
    kind = "unreachable"

    @classmethod
    def build(cls, host: str, what: str) -> HostUnreachable:
        return cls(host, f"{host}: cannot connect ({what}); check that the host is up, its name resolves, "
                         f"WinRM listens on the configured port and the TLS settings match.")


class HostTimeout(HyperVError):
    kind = "timeout"

    @classmethod
    def build(cls, host: str, action: str, deadline_s: float) -> HostTimeout:
        return cls(host, f"{host}: {action} did not finish within {deadline_s:g} s; check the host's load "
                         f"and WinRM service, or retry with a longer deadline.")


class AuthFailed(HyperVError):
    kind = "auth"

    @classmethod
    def build(cls, host: str, auth: str, username: str | None) -> AuthFailed:
        who = f"user {username}" if username else "the configured user"
        return cls(host, f"{host}: authentication failed for {who} with {auth}; check the credential "
                         f"reference in the inventory and the host's WinRM auth settings.")


class WSManFault(HyperVError):
    kind = "wsman"

    def __init__(self, host: str, message: str, code: int | str | None) -> None:
        super().__init__(host, message)
        self.code = code

    @classmethod
    def build(cls, host: str, code: int | str | None, reason: str | None) -> WSManFault:
        text = _one_line(reason) or "no reason given"
        return cls(host, f"{host}: WinRM refused the request (fault {code}: {text}); check the WinRM "
                         f"service, its quotas and the session configuration name.", code)


@dataclass(frozen=True)
class ErrorDetail:
    """One PowerShell error record, reduced to what a person needs."""

    message: str
    fq_error_id: str
    category: str
    target: str | None = None


class PowerShellError(HyperVError):
    kind = "powershell"

    def __init__(self, host: str, message: str, details: tuple[ErrorDetail, ...]) -> None:
        super().__init__(host, message)
        self.details = details

    @property
    def fq_error_id(self) -> str:
        return self.details[0].fq_error_id if self.details else ""

    @property
    def category(self) -> str:
        return self.details[0].category if self.details else ""

    @classmethod
    def build(cls, host: str, command: str, details: tuple[ErrorDetail, ...]) -> PowerShellError:
        first = details[0] if details else ErrorDetail("unknown error", "", "")
        more = f" (+{len(details) - 1} more)" if len(details) > 1 else ""
        return cls(host, f"{host}: {command} failed: {_one_line(first.message)} [{first.fq_error_id}, "
                         f"{first.category}]{more}; check the VM name and its state on that host.", details)


class ProtocolError(HyperVError):
    """The remote end answered with something pypsrp could not use (broken pool, bad reply)."""

    kind = "protocol"

    @classmethod
    def build(cls, host: str, what: str) -> ProtocolError:
        return cls(host, f"{host}: the PowerShell session broke ({what}); it will be rebuilt on the next "
                         f"call; check the WinRM service if this repeats.")


class ConfigError(HyperVError):
    kind = "config"

    @classmethod
    def build(cls, host: str, what: str) -> ConfigError:
        return cls(host, f"{host}: the inventory entry is not usable ({what}); fix the inventory file.")


def _one_line(text: str | None, limit: int = 300) -> str:
    if not text:
        return ""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
