"""The pure parts of fan-out: concurrency bound, per-host results/errors, the outer deadline backstop."""

from __future__ import annotations

import threading
import time

import pytest

from jobs.hyperv.errors import HostUnreachable
from jobs.hyperv.fleet import Fleet, HostCall
from jobs.hyperv.hosts import parse_inventory
from jobs.hyperv.settings import JobSettings
from jobs.inventory.queries import parse_targets


def _fleet(n: int, **settings: float) -> Fleet:
    hosts = [{"name": f"hv-{i}", "url": f"http://127.0.0.1:9/wsman", "auth": "basic"} for i in range(n)]
    return Fleet(parse_inventory({"hosts": hosts}), JobSettings(**settings))


def test_results_and_errors_per_host_in_inventory_order() -> None:
    fleet = _fleet(5)

    def fn(call: HostCall) -> str:
        if call.host == "hv-2":
            raise HostUnreachable.build(call.host, "connection refused")
        return call.host.upper()

    out = fleet.fan_out(fn)
    assert list(out.results) == ["hv-0", "hv-1", "hv-3", "hv-4"]
    assert out.results["hv-3"] == "HV-3"
    assert [e["host"] for e in out.error_dicts()] == ["hv-2"] and out.errors["hv-2"].kind == "unreachable"


def test_concurrency_is_bounded() -> None:
    fleet = _fleet(12, fanout_concurrency=3)
    lock = threading.Lock()
    active = peak = 0
    arrived = threading.Barrier(3, timeout=5)

    def fn(call: HostCall) -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        arrived.wait()  # three at a time must be able to run together
        with lock:
            active -= 1

    out = fleet.fan_out(fn)
    assert len(out.results) == 12 and peak == 3


def test_a_stuck_function_becomes_a_timeout_and_others_still_answer() -> None:
    fleet = _fleet(3)
    release = threading.Event()

    def fn(call: HostCall) -> str:
        if call.host == "hv-1":
            release.wait(30)  # stuck far past the deadline
        return "ok"

    started = time.monotonic()
    try:
        out = fleet.fan_out(fn, deadline_s=0.3)
    finally:
        release.set()
    elapsed = time.monotonic() - started
    assert out.results == {"hv-0": "ok", "hv-2": "ok"}
    assert out.errors["hv-1"].kind == "timeout"
    assert elapsed < 0.3 + 2.5


def test_programming_errors_are_not_swallowed() -> None:
    with pytest.raises(ZeroDivisionError):
        _fleet(1).fan_out(lambda call: 1 / 0)


def test_unknown_host_is_a_config_error() -> None:
    with pytest.raises(Exception, match="not in the inventory"):
        _fleet(1).select("hv-9")


def test_targets_classified() -> None:
    t = parse_targets(["web*", "10.0.4.7", "10.0.4.0/24", "2001:db8::/64", " ", "db'; x"])
    assert t.names == ("web*", "db'; x")
    assert {str(a) for a in t.addresses} == {"10.0.4.7"}
    assert [str(n) for n in t.networks] == ["10.0.4.0/24", "2001:db8::/64"]


def test_threads_are_bounded_and_reused_across_calls() -> None:
    fleet = _fleet(20, fanout_concurrency=4)

    seen: set[int] = set()
    lock = threading.Lock()

    def fn(call: HostCall) -> str:
        with lock:
            seen.add(threading.get_ident())
        return call.host

    try:
        for _ in range(3):
            assert len(fleet.fan_out(fn).results) == 20
        assert 1 <= len(seen) <= 4  # 60 host calls on at most 4 threads, kept between fan-outs
    finally:
        fleet.close()
