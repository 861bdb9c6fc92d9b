"""Socket Mode with the same front checks as HTTP, where they apply.

Socket Mode requests come over hvbot's own WebSocket to Slack and carry no signature (Bolt skips verification for
them, slack.md §5), but they reach the same Bolt dispatch, so they get the same shape check
(bot/middleware/payload_shape.py) before Bolt builds a request, and Slack's retries (the envelope's
`retry_attempt`, slack.md §1) are acknowledged and dropped. A refused envelope is still acknowledged, so Slack does
not deliver it again; a slash command's acknowledgement carries the reason, which Slack shows its user.
"""

from __future__ import annotations

import logging

from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.middleware import payload_shape

log = logging.getLogger("hvbot.socket_mode")


class CheckedSocketModeHandler(SocketModeHandler):
    def handle(self, client: BaseSocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
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
