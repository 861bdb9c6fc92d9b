"""Numbers as people read them: sizes in binary units, durations and ages in short words, counted nouns, articles.

One module for every message, bot's and the jobs' alike (so it lives in jobs, which bot may import), so "4 GiB",
"3 h 5 min" and "12 min ago" read the same everywhere. Exact values stay in the data (the CSV keeps bytes and ISO
times); these functions only shape what a message shows.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import humanize

_UNITS = (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1))
_TRAILING_ZERO = re.compile(r"\.0(?= )")
# Words starting with a vowel letter but a consonant sound, and the reverse (hour, honest): enough for our texts.
_CONSONANT_SOUND = ("one", "once", "uni", "use", "usu", "eu")
_VOWEL_SOUND = ("hour", "honest", "honour", "honor")


def size(value: Any) -> str:
    """Bytes as binary units, one decimal only when it says something: ``4 GiB``, ``2.4 GiB``, ``512 MiB``.

    ``None`` or a non-number is shown as it is (empty for None), so a missing value never reads as zero."""
    if value is None or isinstance(value, bool):
        return "" if value is None else str(value)
    try:
        number = int(value) if not isinstance(value, float) else round(value)
    except (TypeError, ValueError):
        return str(value)
    text = humanize.naturalsize(number, binary=True, format="%.1f")
    return _TRAILING_ZERO.sub("", text).replace(" Bytes", " B").replace(" Byte", " B")


def duration(seconds: float | int | None, parts: int = 2) -> str:
    """A span in short words, the ``parts`` largest units: ``45 s``, ``12 min``, ``3 h 5 min``, ``2 d 4 h``."""
    if seconds is None:
        return ""
    left = max(0, int(round(float(seconds))))
    if left == 0:
        return "0 s"
    words: list[str] = []
    for unit, length in _UNITS:
        count, left = divmod(left, length)
        if count and len(words) < parts:
            words.append(f"{count} {unit}")
        elif words:
            # a unit skipped after the first (3 h 0 min 20 s) ends the phrase: "3 h", never "3 h 20 s"
            break
    return " ".join(words)


def age(when: datetime | None, now: datetime | None = None) -> str:
    """How long ago (or how far ahead) ``when`` is: ``12 min ago``, ``in 5 min``, ``just now`` (under 5 s)."""
    if when is None:
        return ""
    now = now or datetime.now(UTC)
    delta = (now - _aware(when)).total_seconds()
    if abs(delta) < 5:
        return "just now"
    return f"{duration(delta, 1 if abs(delta) < 3_600 else 2)} ago" if delta > 0 else f"in {duration(-delta)}"


def timestamp(when: datetime | None, seconds: bool = False) -> str:
    """The absolute time in UTC, to the minute (``2026-12-06 14:03 UTC``) or the second where data loss is told."""
    shape = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return "" if when is None else f"{_aware(when).astimezone(UTC).strftime(shape)} UTC"


def when_and_age(when: datetime | None, now: datetime | None = None) -> str:
    """Both, where the exact time matters (recovery points, audit): ``2026-12-06 14:03 UTC (12 min ago)``."""
    return "" if when is None else f"{timestamp(when)} ({age(when, now)})"


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 text (or a datetime) as an aware datetime; None when it is not one (naive means UTC)."""
    if isinstance(value, datetime):
        return _aware(value)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return _aware(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
    except ValueError:
        return None


def percent(value: Any) -> str:
    return "" if value is None else f"{value}%"


def yes_no(value: Any) -> str:
    return "" if value is None else ("yes" if value else "no")


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 row``, ``2 rows``, ``0 VMs``; ``many`` for irregular plurals (``1 entry``, ``3 entries``)."""
    return f"{count} {noun if count == 1 else (many or noun + 's')}"


def article(word: str) -> str:
    """``a`` or ``an`` for the word that follows: ``an unplanned``, ``a planned``, ``a unique``, ``an hour``."""
    lower = word.lower()
    if lower.startswith(_VOWEL_SOUND):
        return "an"
    if lower.startswith(_CONSONANT_SOUND):
        return "a"
    return "an" if lower[:1] in ("a", "e", "i", "o", "u") else "a"


def with_article(word: str) -> str:
    return f"{article(word)} {word}"


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)
