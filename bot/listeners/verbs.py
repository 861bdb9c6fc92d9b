"""The shape of a `/hyperv` verb's listener: each feature module returns its verbs from `register`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.grammar import Command
from bot.middleware.authorization import Requester
from bot.runtime import Runtime
from bot.views.common import View

# (runtime, the parsed and authorized command, who asked where, the request body) -> the ack's answer
VerbHandler = Callable[[Runtime, Command, Requester, dict[str, Any]], View]
Verbs = dict[str, VerbHandler]
