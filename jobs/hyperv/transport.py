"""The HTTP side of a host session: a pypsrp WSMan whose every exchange fits inside the call's deadline.

pypsrp has no deadline of its own (psrp.md §7): each exchange is bounded by the time left, and pypsrp's Receive
retries are turned off, so a call never outlives its deadline by more than ``GRACE_S``.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from pypsrp.wsman import WSMan

from jobs.hyperv.hosts import HostConfig
from jobs.hyperv.settings import JobSettings

GRACE_S = 0.5  # extra time for stop/close after the deadline, and HTTP slack on the last exchange


class DeadlineHit(Exception):
    """The call's deadline passed before an HTTP exchange could start."""


class DeadlineWSMan(WSMan):
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
            raise DeadlineHit()
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


def build_wsman(config: HostConfig, settings: JobSettings) -> DeadlineWSMan:
    parts = urlsplit(config.url)
    ssl = parts.scheme == "https"
    cert_validation: bool | str = str(config.ca_file) if config.ca_file else config.verify_tls
    return DeadlineWSMan(
        settings, server=parts.hostname or "", port=parts.port or (5986 if ssl else 5985),
        path=parts.path.lstrip("/") or "wsman", ssl=ssl, auth=config.auth, username=config.username,
        password=config.secret(), cert_validation=cert_validation,
        # Basic over plain HTTP only exists in the lab; every other auth mode keeps message encryption.
        encryption="never" if (not ssl and config.auth == "basic") else "auto",
        operation_timeout=settings.operation_timeout_s, connection_timeout=int(settings.connection_timeout_s) or 1,
        read_timeout=int(settings.read_timeout_s) or 1, reconnection_retries=settings.reconnection_retries,
        reconnection_backoff=settings.reconnection_backoff_s, no_proxy=config.proxy is None, proxy=config.proxy,
    )
