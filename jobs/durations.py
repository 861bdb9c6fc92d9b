"""The one duration syntax of hvbot (``45s``, ``30m``, ``2h``, ``1h30m``, ``1d``): chat commands, the backup CLI and
recovery plan files all read durations here, so ``jobs`` and ``bot`` agree on what ``5m`` means."""

from __future__ import annotations

import re
from datetime import timedelta

from jobs import units

_DURATION = re.compile(r"^(?:(\d{1,3})d)?(?:(\d{1,4})h)?(?:(\d{1,5})m(?:in)?)?(?:(\d{1,6})s)?$", re.IGNORECASE)


def parse_duration(text: str, maximum: timedelta | None = None, what: str = "") -> timedelta:
    """``45s``, ``30m``, ``2h``, ``1h30m``, ``1d`` -> timedelta; ValueError with a clear sentence otherwise.

    `maximum` is the caller's limit and `what` names it in the refusal ("a backup window").
    """
    match = _DURATION.match(text.strip())
    if not match or not any(match.groups()):
        raise ValueError(f"`{text[:30]}` is not a duration such as 30m, 2h, 1h30m or 1d")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    length = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if length <= timedelta(0):
        raise ValueError(f"`{text[:30]}` is no time at all; give a duration such as 30m or 2h")
    if maximum is not None and length > maximum:
        raise ValueError(f"{what or 'it'} lasts at most {_span(maximum)}, so `{text[:30]}` is too long")
    return length


def _span(length: timedelta) -> str:
    seconds = int(length.total_seconds())
    return units.plural(seconds // 86400, "day") if seconds % 86400 == 0 else f"{seconds // 3600} h"
