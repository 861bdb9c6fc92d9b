"""Readable numbers: sizes, durations, ages, times, counted nouns and articles (jobs/units.py)."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from jobs import units

GIB = 1024**3
NOW = datetime(2026, 12, 6, 14, 30, tzinfo=UTC)


@pytest.mark.parametrize(("value", "shown"), [
    (4 * GIB, "4 GiB"), (16 * GIB, "16 GiB"), (2576980377, "2.4 GiB"), (512 * 1024**2, "512 MiB"),
    (1536 * 1024**2, "1.5 GiB"), (0, "0 B"), (1, "1 B"), (700, "700 B"), (10 * 1024**4, "10 TiB"),
    (None, ""), ("n/a", "n/a"), (True, "True"),
])
def test_sizes_in_binary_units(value: object, shown: str) -> None:
    assert units.size(value) == shown


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "0 s"), (45, "45 s"), (60, "1 min"), (12 * 60 + 30, "12 min 30 s"), (3 * 3600 + 5 * 60, "3 h 5 min"),
    (3 * 3600 + 20, "3 h"), (2 * 86400 + 4 * 3600 + 59, "2 d 4 h"), (93784.5, "1 d 2 h"), (-5, "0 s"), (None, ""),
])
def test_durations_in_short_words(seconds: float | None, shown: str) -> None:
    assert units.duration(seconds) == shown


def test_ages_past_and_future() -> None:
    assert units.age(NOW - timedelta(minutes=12, seconds=40), NOW) == "12 min ago"
    assert units.age(NOW - timedelta(hours=3, minutes=5), NOW) == "3 h 5 min ago"
    assert units.age(NOW - timedelta(seconds=2), NOW) == "just now"
    assert units.age(NOW + timedelta(minutes=5), NOW) == "in 5 min"
    assert units.age(None, NOW) == ""
    naive = datetime(2026, 12, 6, 14, 0)  # naive times are UTC
    assert units.age(naive, NOW) == "30 min ago"


def test_absolute_time_with_its_age() -> None:
    when = datetime(2026, 12, 6, 15, 3, 59, tzinfo=timezone(timedelta(hours=1)))  # shown in UTC
    assert units.timestamp(when) == "2026-12-06 14:03 UTC"
    assert units.timestamp(when, seconds=True) == "2026-12-06 14:03:59 UTC"
    assert units.when_and_age(when, NOW) == "2026-12-06 14:03 UTC (26 min ago)"
    assert units.when_and_age(None, NOW) == ""


def test_iso_texts_parse_to_aware_times() -> None:
    assert units.parse_time("2026-12-06T14:00:49+00:00") == datetime(2026, 12, 6, 14, 0, 49, tzinfo=UTC)
    assert units.parse_time("2026-12-06T15:00:49+01:00") == datetime(2026, 12, 6, 14, 0, 49, tzinfo=UTC)
    assert units.parse_time("2026-12-06T14:00:49Z") == datetime(2026, 12, 6, 14, 0, 49, tzinfo=UTC)
    assert units.parse_time("2026-12-06T14:00:49").tzinfo is UTC  # type: ignore[union-attr]
    assert units.parse_time("yesterday") is None and units.parse_time(None) is None and units.parse_time("") is None


@pytest.mark.parametrize(("count", "noun", "many", "shown"), [
    (1, "row", None, "1 row"), (0, "row", None, "0 rows"), (2, "host", None, "2 hosts"),
    (1, "entry", "entries", "1 entry"), (3, "entry", "entries", "3 entries"),
])
def test_counted_nouns(count: int, noun: str, many: str | None, shown: str) -> None:
    assert units.plural(count, noun, many) == shown


@pytest.mark.parametrize(("word", "phrase"), [
    ("unplanned", "an unplanned"), ("planned", "a planned"), ("test", "a test"), ("site", "a site"),
    ("host", "a host"), ("hour", "an hour"), ("unique", "a unique"), ("Error", "an Error"), ("open", "an open"),
])
def test_articles(word: str, phrase: str) -> None:
    assert units.with_article(word) == phrase


def test_percent_and_yes_no() -> None:
    assert units.percent(60) == "60%" and units.percent(None) == ""
    assert units.yes_no(True) == "yes" and units.yes_no(False) == "no" and units.yes_no(None) == ""
