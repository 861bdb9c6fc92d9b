"""Fixtures of the lab's unit tests: the default fleet on a stopped clock and host hv-a1's engine."""

from __future__ import annotations

import pytest

from lab.cmdlets import HyperVEngine
from lab.fleet_file import default_fleet
from lab.model import Fleet
from tests.support.lab_io import NOW


@pytest.fixture
def fleet() -> Fleet:
    f = default_fleet(now=NOW)
    f.clock = lambda: NOW
    return f


@pytest.fixture
def a1(fleet: Fleet) -> HyperVEngine:
    return HyperVEngine(fleet, "hv-a1")
