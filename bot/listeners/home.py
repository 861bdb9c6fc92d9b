"""App Home: `app_home_opened` publishes the user's view (bot.delivery.home); its Approve / Reject buttons are the
approval cards' own, registered and gated by the failover, site failover and drill listeners."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App

from bot.delivery.cards import lazy_approval_store
from bot.delivery.home import HomePublisher
from bot.listeners.verbs import Verbs
from bot.middleware.authorization import Gate
from bot.runtime import Runtime

log = logging.getLogger("hvbot.home")


def publisher(runtime: Runtime) -> HomePublisher:
    return HomePublisher(runtime.redis, runtime.client, runtime.authz,
                         lazy_approval_store(runtime.settings, runtime.redis), runtime.settings.queue)


def register(app: App, runtime: Runtime, gate: Gate) -> Verbs:
    home = publisher(runtime)

    def ack_event(ack: Ack) -> None:
        ack()

    def opened(event: dict[str, Any]) -> None:
        if event.get("tab", "home") != "home":
            return  # the Messages tab opened: nothing to publish
        home.opened(str(event.get("user", "")))

    app.event("app_home_opened")(ack=ack_event, lazy=[opened])
    return {}
