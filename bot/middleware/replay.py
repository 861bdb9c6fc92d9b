"""At most once per signed request: Slack's retries are dropped, and so is an exact replay of a signed request.

A signature covers `v0:{timestamp}:{body}` and is accepted while the timestamp is within 5 minutes of now
(slack.md §5), so the first request that shows a signature claims it in Redis (`SET NX`) until that window has
closed; a second request with the same signature inside the window is the same request again and runs nothing.
After the window the signature is refused as stale anyway, so the key never needs to outlive it.

If Redis cannot be asked, the request is refused (fail closed): a replay cannot be told from a first request, and
without Redis hvbot could not queue the work anyway. The caller answers that with a clear "try again" message.
"""

from __future__ import annotations

import math

import redis

from jobs.keys import REPLAY_KEY

SIGNATURE_WINDOW_S = 300  # slack_sdk's SignatureVerifier refuses a timestamp more than 5 minutes from now
RETRY_HEADER = "x-slack-retry-num"
RETRY_REASON_HEADER = "x-slack-retry-reason"


class ReplayCache:
    def __init__(self, connection: redis.Redis, window_s: int = SIGNATURE_WINDOW_S) -> None:
        self.connection = connection
        self.window_s = window_s

    def first_sight(self, signature: str, timestamp: int, now: float) -> bool:
        """True for the first request with this (already verified) signature; False for a replay.
        Raises redis.RedisError when Redis cannot be asked."""
        # The key lives until the signature itself expires (timestamp + window), plus a second for rounding.
        ttl = max(1, min(2 * self.window_s, math.ceil(timestamp + self.window_s - now) + 1))
        digest = signature.removeprefix("v0=")
        return bool(self.connection.set(REPLAY_KEY.format(digest), b"1", nx=True, ex=ttl))


def retry_of(headers: dict[str, list[str]]) -> str | None:
    """Slack's retry number and reason when the request is a retry (`X-Slack-Retry-Num`), else None."""
    number = headers.get(RETRY_HEADER)
    if not number:
        return None
    reason = (headers.get(RETRY_REASON_HEADER) or ["unknown"])[0]
    return f"retry {number[0][:8]!r} ({reason[:40]!r})"
