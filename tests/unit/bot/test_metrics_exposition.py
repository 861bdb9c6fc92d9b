"""The worker's multiprocess files: exited work horses' counters and histograms folded into one archive per
type, so /metrics keeps their sums while the directory stops growing; plus the Socket Mode gauge and verb labels."""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from bot.cli.metrics import FoldingMultiProcessCollector, exposition, fold_exited
from bot.metrics import SocketModeCollector
from bot.middleware.authorization import verb_label
from tests.support.scrape import Scrape

CALLS = ("hvbot_host_calls", "hvbot_host_calls_total", ["host", "call", "outcome"], ["hv-a1", "invoke", "ok"],
         "calls")


def _write(path: Path, values: dict[tuple, float]) -> None:
    """A process's file as prometheus-client's multiprocess mode writes it."""
    mm = MmapedDict(str(path))
    try:
        for (metric, name, labelnames, labelvalues, help_text), value in values.items():
            mm.write_value(mmap_key(metric, name, labelnames, labelvalues, help_text), value, 0.0)
    finally:
        mm.close()


def _calls(key: tuple) -> tuple:
    return key[0], key[1], tuple(key[2]), tuple(key[3]), key[4]


def test_exited_processes_are_folded_and_their_sums_kept(tmp_path: Path) -> None:
    key = _calls(CALLS)
    gauge_key = ("hvbot_x", "hvbot_x", (), (), "x")
    for pid, value in ((900001, 2.0), (900002, 3.0), (900003, 5.0)):
        _write(tmp_path / f"counter_{pid}.db", {key: value})
    _write(tmp_path / "gauge_all_900001.db", {gauge_key: 7.0})
    alive = {900003}.__contains__  # the running horse's file stays as it is

    registry = CollectorRegistry()
    FoldingMultiProcessCollector(registry, str(tmp_path), alive=alive)
    body, _ = exposition(registry)(None)
    assert Scrape.parse(body.decode()).value("hvbot_host_calls_total", host="hv-a1", outcome="ok") == 10.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_900003.db", "counter_archive.db"]

    _write(tmp_path / "counter_900004.db", {key: 1.0})  # the next horse, exited before the next scrape
    assert fold_exited(str(tmp_path), alive) == 1
    body, _ = exposition(registry)(None)
    assert Scrape.parse(body.decode()).value("hvbot_host_calls_total", host="hv-a1", outcome="ok") == 11.0


def test_own_files_and_the_archive_are_never_folded(tmp_path: Path) -> None:
    key = _calls(CALLS)
    _write(tmp_path / f"counter_{os.getpid()}.db", {key: 4.0})
    _write(tmp_path / "counter_archive.db", {key: 6.0})
    assert fold_exited(str(tmp_path), lambda pid: False) == 0
    assert len(list(tmp_path.iterdir())) == 2


def test_a_file_a_starting_horse_has_just_created_does_not_fail_the_scrape(tmp_path: Path) -> None:
    """A horse's MmapedDict opens its file before it sizes it: a scrape in between once answered 500 in CI."""
    key = _calls(CALLS)
    _write(tmp_path / "counter_900001.db", {key: 2.0})
    (tmp_path / "counter_900002.db").touch()  # the starting horse, still running
    (tmp_path / "histogram_900003.db").touch()  # one killed before it sized its file
    registry = CollectorRegistry()
    FoldingMultiProcessCollector(registry, str(tmp_path), alive={900002}.__contains__)
    body, _ = exposition(registry)(None)
    assert Scrape.parse(body.decode()).value("hvbot_host_calls_total", host="hv-a1", outcome="ok") == 2.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_900002.db", "counter_archive.db"]


def test_socket_mode_gauge_is_read_at_scrape_time() -> None:
    state = {"up": False}
    registry = CollectorRegistry()
    registry.register(SocketModeCollector(lambda: state["up"]))
    assert registry.get_sample_value("hvbot_socket_mode_connected") == 0
    state["up"] = True
    assert registry.get_sample_value("hvbot_socket_mode_connected") == 1


def test_verb_labels_are_bounded_by_the_grammar() -> None:
    assert verb_label("vms --host hv-a1") == "vms"
    assert verb_label("VMS") == "vms"
    assert verb_label("drop table users") == "unknown"
    assert verb_label("   ") == "unknown"
