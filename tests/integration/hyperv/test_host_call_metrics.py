"""`hvbot_host_calls_total` through the real lab: every session open (WinRM shell + runspace pool) is a host call
of its own, `call="open"`, ahead of time (warm) or inside a call, with the outcome of a failed one (unreachable,
auth, timeout); invocations are `call="invoke"`, a watched one (checkpoint export) too, `stopped` when its watcher
stopped it."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from prometheus_client import REGISTRY

from jobs.backup.export import export_pipeline
from jobs.hyperv.commands import single
from jobs.hyperv.errors import HyperVError
from jobs.hyperv.fleet import Fleet
from jobs.hyperv.session import WatchStopped
from tests.support.fixtures_redis import wait_until

DEADLINE = 5.0


def _calls(host: str) -> Counter[tuple[str, str]]:
    """This process's host calls of `host` so far, by (call, outcome)."""
    counts: Counter[tuple[str, str]] = Counter()
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name == "hvbot_host_calls_total" and sample.labels["host"] == host:
                counts[(sample.labels["call"], sample.labels["outcome"])] += int(sample.value)
    return counts


def _open_seconds_count(host: str) -> float:
    return REGISTRY.get_sample_value("hvbot_host_call_seconds_count", {"host": host, "call": "open"}) or 0.0


def test_a_session_open_is_one_host_call_and_the_calls_after_it_are_invocations(
        lab_fleet: tuple[Any, Fleet]) -> None:
    lab, fleet = lab_fleet
    before, seconds_before = _calls("hv-a1"), _open_seconds_count("hv-a1")
    fleet.run("hv-a1", single("Get-VM"))  # opens the session, then invokes
    fleet.run("hv-a1", single("Get-VM"))  # the same session
    assert _calls("hv-a1") - before == Counter({("open", "ok"): 1, ("invoke", "ok"): 2})
    assert _open_seconds_count("hv-a1") - seconds_before == 1

    lab.hosts["hv-a1"].server.service.close_all()  # the host forgets its shells: the next call opens again
    fleet.run("hv-a1", single("Get-VM"))
    assert _calls("hv-a1") - before == Counter({("open", "ok"): 2, ("invoke", "ok"): 3})

    before = _calls("hv-b1")
    assert fleet.warm(["hv-b1"]).results == {"hv-b1": True}  # an open ahead of time, no invocation
    assert _calls("hv-b1") - before == Counter({("open", "ok"): 1})


@pytest.mark.parametrize(("action", "args", "outcome"), [
    ("down", {}, "unreachable"),
    ("auth_failure", {"on": True}, "auth"),
    ("hung", {"on": True}, "timeout"),
])
def test_a_failed_open_counts_with_its_error_kind(lab_fleet: tuple[Any, Fleet], action: str, args: dict[str, Any],
                                                  outcome: str) -> None:
    lab, fleet = lab_fleet
    lab.control("hv-a2", action, args)
    try:
        before = _calls("hv-a2")
        with pytest.raises(HyperVError) as opening:
            fleet.session("hv-a2").open(deadline_s=1.0)  # what warming does, host by host
        assert opening.value.kind == outcome
        assert _calls("hv-a2") - before == Counter({("open", outcome): 1})  # no invocation was sent

        with pytest.raises(HyperVError) as info:
            fleet.run("hv-a2", single("Get-VM"), deadline_s=1.0)
        assert info.value.kind == outcome
        # the open failed, and with it the invocation that needed it
        assert _calls("hv-a2") - before == Counter({("open", outcome): 2, ("invoke", outcome): 1})
    finally:
        if action == "hung":
            lab.control("hv-a2", "hung", {"on": False})


def _invoke_seconds_count(host: str) -> float:
    return REGISTRY.get_sample_value("hvbot_host_call_seconds_count", {"host": host, "call": "invoke"}) or 0.0


EXPORT = export_pipeline("web01", "baseline", "D:\\Exports")  # web01 and its checkpoint live on hv-a1


def test_a_watched_export_is_an_invocation_with_its_outcome(lab_fleet: tuple[Any, Fleet]) -> None:
    """`run_watched` (checkpoint export) counts like `run`: ok, or the error kind it leaves with."""
    lab, fleet = lab_fleet
    lab.fleet.apply_control("export_timing", {"seconds": 0, "steps": 1})
    before, seconds_before = _calls("hv-a1"), _invoke_seconds_count("hv-a1")
    fleet.session("hv-a1").run_watched(EXPORT, lambda records: True, deadline_s=DEADLINE)
    lab.fleet.apply_control("fail_next", {"host": "hv-a1", "cmdlet": "Export-VMSnapshot", "after_steps": 0})
    with pytest.raises(HyperVError) as info:
        fleet.session("hv-a1").run_watched(EXPORT, lambda records: True, deadline_s=DEADLINE)
    assert info.value.kind == "powershell"
    assert _calls("hv-a1") - before == Counter({("open", "ok"): 1, ("invoke", "ok"): 1, ("invoke", "powershell"): 1})
    assert _invoke_seconds_count("hv-a1") - seconds_before == 2


def test_a_watched_export_its_watcher_stops_counts_as_stopped(lab_fleet: tuple[Any, Fleet]) -> None:
    """A user's Cancel (the watcher says stop) is neither ok nor an error of the host: its own outcome."""
    lab, fleet = lab_fleet
    lab.fleet.apply_control("clock", {"freeze": True})  # the export never finishes by itself
    lab.fleet.apply_control("export_timing", {"seconds": 60, "steps": 10})
    before, seconds_before = _calls("hv-a1"), _invoke_seconds_count("hv-a1")
    with pytest.raises(WatchStopped):
        fleet.session("hv-a1").run_watched(EXPORT, lambda records: False, deadline_s=DEADLINE)
    assert _calls("hv-a1") - before == Counter({("open", "ok"): 1, ("invoke", "stopped"): 1})
    assert _invoke_seconds_count("hv-a1") - seconds_before == 1
    wait_until(lambda: lab.fleet.exports[-1].status == "Cancelled", 30, "the lab to stop the export")
