"""Socket Mode with the same front checks as HTTP, where they apply.

Socket Mode requests come over hvbot's own WebSocket to Slack and carry no signature (Bolt skips verification for
them, slack.md §5), but they reach the same Bolt dispatch, so they get the same shape check
(bot/middleware/payload_shape.py) before Bolt builds a request, and Slack's retries (the envelope's
`retry_attempt`, slack.md §1) are acknowledged and dropped. A refused envelope is still acknowledged, so Slack does
not deliver it again; a slash command's acknowledgement carries the reason, which Slack shows its user.

Readiness: `connected()` is the SDK client's own `is_connected()` (its socket is open), read when asked. slack_sdk
reconnects by itself (on a close, and from its monitor every `ping_interval`); every `hello` after the first is
a new connection, counted in `hvbot_socket_mode_reconnects_total`.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.metrics import ACK_SECONDS, SOCKET_RECONNECTS
from bot.middleware import payload_shape

log = logging.getLogger("hvbot.socket_mode")


class CheckedSocketModeHandler(SocketModeHandler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hellos = 0
        self._hello_lock = threading.Lock()
        self.client.message_listeners.append(self._on_message)
        self.client.on_close_listeners.append(self._on_close)

    def connected(self) -> bool:
        """True only while the WebSocket to Slack is open."""
        return bool(self.client.is_connected())

    def _on_message(self, _client: BaseSocketModeClient, message: dict[str, Any], _raw: str | None) -> None:
        if message.get("type") != "hello":  # Slack's first frame on every new connection
            return
        with self._hello_lock:
            self._hellos += 1
            again = self._hellos > 1
        if again:
            SOCKET_RECONNECTS.inc()
            log.info("Socket Mode connected again (connection %d)", self._hellos)

    def _on_close(self, code: int, reason: str | None) -> None:
        log.warning("Socket Mode connection closed (code %s, %s); slack_sdk reconnects", code, reason or "no reason")

    def handle(self, client: BaseSocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        started = time.perf_counter()
        try:
            self._checked(client, req)
        finally:
            ACK_SECONDS.labels("socket_mode").observe(time.perf_counter() - started)

    def _checked(self, client: BaseSocketModeClient, req: SocketModeRequest) -> None:
        if req.retry_attempt and str(req.retry_attempt) != "0":  # an events envelope's first delivery says 0
            log.info("dropped Slack's retry %s (%s) of envelope %s", req.retry_attempt, req.retry_reason, req.type)
            client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            return
        wrong = payload_shape.problem(req.payload)
        if wrong is not None:
            log.warning("refused a Socket Mode %s envelope: %s", req.type, wrong)
            shown = {"text": f"hvbot could not read this request: {wrong}"} if req.type == "slash_commands" else None
            client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id, payload=shown))
            return
        super().handle(client, req)  # type: ignore[arg-type]
