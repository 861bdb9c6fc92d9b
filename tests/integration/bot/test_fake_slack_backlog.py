"""The fake Slack Web API takes a burst of connections at once, as Slack does: fifty clicks answered through their
response_urls at the same moment must not wait on TCP's SYN retries (1, 2, 4 ... 32 s) behind a listen backlog of 5."""

from __future__ import annotations

import select
import socket

from bot.adapters.fake_slack import FakeSlack

BURST = 64


def test_a_burst_of_connections_is_queued_while_the_server_is_busy() -> None:
    fake = FakeSlack()  # listening, but not accepting yet: as busy as it gets
    port = int(fake.base_url.rsplit(":", 1)[1])
    clients = [socket.socket() for _ in range(BURST)]
    try:
        for client in clients:
            client.setblocking(False)
            client.connect_ex(("127.0.0.1", port))
        pending = set(clients)
        # A queued connection completes its handshake at once; one the kernel dropped stays pending for >= 1 s.
        while pending:
            _, writable, _ = select.select([], list(pending), [], 0.5)
            if not writable:
                break
            pending -= set(writable)
        assert not pending, f"{len(pending)} of {BURST} connections were not queued"
        assert all(client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 for client in clients)
    finally:
        for client in clients:
            client.close()
        fake.start().stop()  # stop() ends a serving loop: start one to end
