"""Every hvbot process runs with the tuned collector settings (jobs/gc_tuning.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from jobs.gc_tuning import THRESHOLDS, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_tune_gc_freezes_start_up_objects_and_raises_thresholds(restored_gc: None) -> None:
    gc.unfreeze()
    tune_gc()
    assert gc.get_threshold() == THRESHOLDS
    assert gc.get_freeze_count() > 0


def test_the_hvbot_command_tunes_before_any_subcommand(restored_gc: None, tmp_path: Path) -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    result = CliRunner().invoke(main, ["jea", "--out", str(tmp_path / "jea")])
    assert result.exit_code == 0, result.output
    assert gc.get_threshold() == THRESHOLDS
