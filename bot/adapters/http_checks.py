"""What the HTTP front checks before Bolt sees a request, in this order:

1. the signature headers and the signature itself, on the raw body (nothing is parsed before the request is known
   to come from Slack): a missing or wrong signature is 401, a malformed header is 400;
2. Slack's retries (`X-Slack-Retry-Num`): acknowledged with an empty 200 and dropped, since the first delivery
   was answered or is still being handled (slack.md §1 "Events API retries");
3. the body's shape (bot/middleware/payload_shape.py): 400 with one sentence saying what is wrong;
4. replays: a signature seen before inside its 5-minute window is dropped with an empty 200
   (bot/middleware/replay.py); if Redis cannot be asked, nothing runs and the client is told so.

Every answer made here is one log line, never a traceback, and none is a 500. Non-2xx answers carry
`X-Slack-No-Retry: 1`: a refused request will not get better by being sent again.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import redis
from slack_bolt import BoltContext, BoltRequest
from slack_bolt.request.internals import build_context
from slack_sdk.signature import Clock, SignatureVerifier

from bot.middleware import payload_shape
from bot.middleware.replay import ReplayCache, retry_of

log = logging.getLogger("hvbot.http")

TIMESTAMP = re.compile(r"[0-9]{1,12}", re.ASCII)  # Unix seconds; 12 digits is far beyond any real clock
SIGNATURE = re.compile(r"v0=[0-9a-f]{64}", re.ASCII)  # HMAC-SHA256 in hex, the only version Slack sends
UNVERIFIED = "invalid request: the Slack signature does not match or is older than 5 minutes"
NO_REDIS = ("hvbot cannot take requests right now: its Redis store is unreachable, so it cannot tell a replayed "
            "request from a new one. Nothing was run; please try again in a minute.")


@dataclass(frozen=True)
class Answer:
    """A response the front gives itself, without Bolt."""

    status: int
    text: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def refuse(cls, status: int, text: str) -> Answer:
        return cls(status, text, {"X-Slack-No-Retry": "1"})


class RequestChecks:
    def __init__(self, signing_secret: str, replay: ReplayCache, clock: Clock | None = None) -> None:
        self._clock = clock or Clock()
        self._verifier = SignatureVerifier(signing_secret, clock=self._clock)
        self._replay = replay

    def admit(self, raw: bytes, headers: dict[str, list[str]], query: str = "") -> BoltRequest | Answer:
        """A BoltRequest ready to dispatch, or the answer that ends the request here."""
        verified = self._verify(raw, headers)
        if isinstance(verified, Answer):
            return verified
        text, timestamp, signature = verified
        retry = retry_of(headers)
        if retry is not None:
            log.info("dropped Slack's %s of a request already delivered", retry)
            return Answer(200)
        try:
            body = payload_shape.parse(text, _content_type(headers))
        except payload_shape.MalformedBody as exc:
            return _malformed(str(exc))
        wrong = payload_shape.problem(body)
        if wrong is not None:
            return _malformed(wrong)
        replayed = self._replayed(signature, timestamp, slash="command" in body)
        if replayed is not None:
            return replayed
        return _bolt_request(text, body, headers, query)

    def _verify(self, raw: bytes, headers: dict[str, list[str]]) -> tuple[str, int, str] | Answer:
        timestamps, signatures = headers.get("x-slack-request-timestamp", []), headers.get("x-slack-signature", [])
        if not timestamps or not signatures:
            log.info("refused a request without Slack's signature headers")
            return Answer.refuse(401, "invalid request: X-Slack-Request-Timestamp and X-Slack-Signature are required")
        if len(timestamps) > 1 or len(signatures) > 1:
            log.info("refused a request with repeated signature headers")
            return Answer.refuse(400, "X-Slack-Request-Timestamp and X-Slack-Signature must each be given once")
        if not TIMESTAMP.fullmatch(timestamps[0]):
            log.info("refused a request whose X-Slack-Request-Timestamp is not a number")
            return Answer.refuse(400, "X-Slack-Request-Timestamp must be a Unix time in whole seconds")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            log.info("refused a request whose body is not UTF-8")
            return Answer.refuse(400, "the request body is not UTF-8 text")
        if not SIGNATURE.fullmatch(signatures[0]) or not self._verifier.is_valid(text, timestamps[0], signatures[0]):
            log.info("refused a request with a wrong or stale Slack signature")
            return Answer.refuse(401, UNVERIFIED)
        return text, int(timestamps[0]), signatures[0]

    def _replayed(self, signature: str, timestamp: int, slash: bool) -> Answer | None:
        try:
            if self._replay.first_sight(signature, timestamp, self._clock.now()):
                return None
        except redis.RedisError as exc:
            log.warning("refused a request: cannot check it against replays (Redis: %s)", type(exc).__name__)
            # A slash command's reply is shown to its user (slack.md §1, ack), so it says why; others get a 503.
            return Answer(200, NO_REDIS) if slash else Answer.refuse(503, NO_REDIS)
        log.warning("dropped a replayed request (same signature as one already taken; signed %d s ago)",
                    max(0, int(self._clock.now()) - timestamp))
        return Answer(200)


def _malformed(reason: str) -> Answer:
    log.warning("refused a signed request: %s", reason)
    return Answer.refuse(400, reason)


def _content_type(headers: dict[str, list[str]]) -> str | None:
    """As Bolt reads it (slack_bolt.request.internals.extract_content_type), so both parse the body alike."""
    value = (headers.get("content-type") or [""])[0]
    return value.split(";")[0] or None


def _bolt_request(text: str, body: dict[str, object], headers: dict[str, list[str]], query: str) -> BoltRequest:
    request = BoltRequest(body=text, query=query, headers=dict(headers))
    if request.body != body:
        # Bolt reads any form whose text merely contains "payload" (`/hyperv vms payload`) as an empty body; the
        # body checked above is the right reading of the same signed bytes, so Bolt gets that one.
        request.body = body
        request.context = build_context(BoltContext(), body)
    return request
