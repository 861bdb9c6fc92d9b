"""One-use button tokens: a button that changes something carries `<expiry><nonce>.<value>` instead of `<value>`.

Sealing needs no storage: the nonce is random and the expiry is in the token, so views can seal wherever they
render (listeners, the worker's reporter, the alert poster). The gate (`bot.middleware.authorization`) spends a
token once with a Redis `SET NX` that lives until the token's expiry, so a double click, a re-signed replay or a
second user pressing the same button runs nothing twice. A forged token gains nothing: the value inside is parsed,
validated and authorized exactly as a typed command would be.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

CARD_LIFETIME = timedelta(minutes=15)  # confirm cards, as the backup request waiting for Run (PENDING_TTL)
MESSAGE_LIFETIME = timedelta(days=7)  # buttons of channel messages (alerts, progress) that stay up for days
MAX_LIFETIME = timedelta(days=8)  # a token claiming to live longer was not sealed here
_SEALED = re.compile(r"^([0-9a-f]{8})([0-9a-f]{16})\.(.*)$", re.DOTALL)


@dataclass(frozen=True)
class Sealed:
    token: str  # expiry and nonce: the one-use identity
    expires_at: int  # Unix seconds
    value: str  # what the button stands for, as the listener reads it


def seal(value: str, lifetime: timedelta, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + lifetime.total_seconds())
    return f"{expires:08x}{secrets.token_hex(8)}.{value}"


def unseal(raw: str) -> Sealed | None:
    """The token and the value of a sealed button value; None when it carries no token."""
    match = _SEALED.match(raw)
    if match is None:
        return None
    return Sealed(match[1] + match[2], int(match[1], 16), match[3])


def plain(raw: str) -> str:
    """The value without its token (read-only uses, such as finding the export a Cancel button belongs to)."""
    sealed = unseal(raw)
    return raw if sealed is None else sealed.value
