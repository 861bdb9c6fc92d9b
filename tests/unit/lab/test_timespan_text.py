"""TimeSpans leave the lab as .NET writes them: psrpcore's writer turned 10 s into ``PT1S`` (it strips zeros)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from psrpcore.types import _serializer

from jobs.hyperv.records import parse_timespan
from lab.clixml import serialize_duration


@pytest.mark.parametrize(("value", "text"), [
    (timedelta(0), "PT0S"), (timedelta(seconds=10), "PT10S"), (timedelta(seconds=30), "PT30S"),
    (timedelta(minutes=1), "PT1M"), (timedelta(seconds=90.5), "PT1M30.5S"), (timedelta(days=1, hours=2), "P1DT2H"),
    (timedelta(seconds=-10), "-PT10S"), (timedelta(hours=12, seconds=20), "PT12H20S"),
])
def test_timespans_are_written_as_xs_duration(value: timedelta, text: str) -> None:
    assert serialize_duration(value) == text
    assert _serializer._serialize_duration(value) == text  # psrpcore's path writes the same
    assert parse_timespan(text) == value.total_seconds()
