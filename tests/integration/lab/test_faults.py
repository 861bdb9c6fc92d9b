"""Every lab fault as pypsrp sees it, and the JSON control endpoint."""

from __future__ import annotations

import time

import pytest
import requests
from pypsrp.exceptions import AuthenticationError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool

from tests.support.fixtures_lab import lab_wsman
from tests.support.lab_test_engine import EngineRegistry, spec_fleet


@pytest.fixture
def faulty(make_lab):
    return make_lab(spec_fleet("h1", "h2"), engine_factory=EngineRegistry())


def _emit(pool, n=3):
    return PowerShell(pool).add_cmdlet("Emit").add_parameter("Count", n).invoke()


def test_host_down_is_connection_refused_and_comes_back_on_the_same_port(faulty):
    port = faulty.hosts["h1"].port
    pool = RunspacePool(lab_wsman(faulty, "h1"))
    pool.open()
    faulty.control("h1", "down", {})
    with pytest.raises(requests.exceptions.ConnectionError):
        RunspacePool(lab_wsman(faulty, "h1")).open()
    assert not pool.is_alive()
    faulty.control("h1", "up", {})
    assert faulty.hosts["h1"].port == port
    with RunspacePool(lab_wsman(faulty, "h1")) as fresh:
        assert _emit(fresh) == [0, 1, 2]
    with RunspacePool(lab_wsman(faulty, "h2")) as other:  # other hosts never noticed
        assert _emit(other) == [0, 1, 2]


def test_hung_host_is_a_read_timeout(faulty):
    faulty.control("h1", "hung", {})
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        RunspacePool(lab_wsman(faulty, "h1", read_timeout=1, operation_timeout=0.5)).open()
    assert time.monotonic() - started >= 1.0
    faulty.control("h1", "clear", {})
    with RunspacePool(lab_wsman(faulty, "h1")) as pool:
        assert _emit(pool) == [0, 1, 2]


def test_authentication_failure_even_with_the_right_password(faulty):
    faulty.control("h1", "auth_failure", {})
    with pytest.raises(AuthenticationError):
        RunspacePool(lab_wsman(faulty, "h1")).open()
    faulty.control("h1", "clear", {})
    with pytest.raises(AuthenticationError):
        RunspacePool(lab_wsman(faulty, "h1", password="wrong")).open()
    with RunspacePool(lab_wsman(faulty, "h1")) as pool:
        assert _emit(pool) == [0, 1, 2]


def test_injected_wsman_fault_on_the_next_requests(faulty):
    with RunspacePool(lab_wsman(faulty, "h1")) as pool:
        faulty.control("h1", "fault", {"code": 2150858770, "reason": "The client cannot connect.", "count": 2})
        for _ in range(2):
            with pytest.raises(WSManFaultError) as info:
                _emit(pool)
            assert info.value.code == 2150858770 and info.value.reason == "The client cannot connect."
            assert info.value.machine == "h1"
        assert _emit(pool) == [0, 1, 2]


def test_latency_is_added_to_every_exchange(faulty):
    with RunspacePool(lab_wsman(faulty, "h1")) as pool:
        faulty.control("h1", "latency", {"seconds": 0.25})
        started = time.monotonic()
        assert _emit(pool) == [0, 1, 2]  # Command + Receive: two delayed exchanges at least
        assert time.monotonic() - started >= 0.5


def test_unanswered_receive_is_retried_with_the_same_message_id_and_replayed(faulty):
    host = faulty.hosts["h1"].server
    wsman = lab_wsman(faulty, "h1", read_timeout=1, operation_timeout=0.5, reconnection_backoff=0.05)
    with RunspacePool(wsman) as pool:
        faulty.control("h1", "stall_receive", {"seconds": 1.5})
        # The first Receive's answer (all 200 objects + Done) is computed, cached, and never delivered
        # in time; pypsrp re-sends the same envelope; only the cache can still answer it.
        assert _emit(pool, 200) == list(range(200))
    assert host.service.replay.hits == 1


def test_a_forgotten_shell_is_fault_2150858843(faulty):
    stale, probed = RunspacePool(lab_wsman(faulty, "h1")), RunspacePool(lab_wsman(faulty, "h1"))
    stale.open()
    probed.open()
    faulty.hosts["h1"].server.service.close_all()  # the host forgot every shell (a service restart)
    with pytest.raises(WSManFaultError) as info:
        _emit(stale)
    assert info.value.code == 2150858843
    assert probed.is_alive() is False


def test_control_endpoint_switches_and_log(faulty):
    url = faulty.control_server.url
    assert requests.post(url, json={"host": "h1", "action": "latency", "seconds": 0.2}).json()["result"]["latency"] == 0.2
    hosts = requests.get(url.replace("/control", "/hosts")).json()
    assert [h["latency"] for h in hosts] == [0.2, 0.0]
    requests.post(url, json={"host": "h1", "action": "clear"})
    with RunspacePool(lab_wsman(faulty, "h1")) as pool:
        PowerShell(pool).add_cmdlet("Get-VM").add_parameter("Name", "a'b").invoke()
    log = requests.get(url.replace("/control", "/log"), params={"host": "h1"}).json()
    assert log[-1]["cmdlet"] == "Get-VM" and log[-1]["parameters"] == [["Name", "a'b"]]
    assert log[-1]["host"] == "h1" and log[-1]["configuration"] == "Microsoft.PowerShell"
    bad = requests.post(url, json={"host": "nope", "action": "down"})
    assert bad.status_code == 400 and "unknown host" in bad.json()["error"]


def test_model_actions_go_to_the_fleet_and_power_loss_takes_the_host_down(faulty):
    url = faulty.control_server.url
    reply = requests.post(url, json={"host": "h1", "action": "vm_state", "vm": "vm1", "state": "Off"}).json()
    assert reply == {"ok": True, "result": {"applied": "vm_state"}}
    assert faulty.fleet.controls[-1] == ("vm_state", {"vm": "vm1", "state": "Off", "host": "h1"})
    requests.post(url, json={"host": "h1", "action": "power_loss"})
    with pytest.raises(requests.exceptions.ConnectionError):
        RunspacePool(lab_wsman(faulty, "h1")).open()
    requests.post(url, json={"host": "h1", "action": "power_on"})
    with RunspacePool(lab_wsman(faulty, "h1")) as pool:
        assert _emit(pool) == [0, 1, 2]
    unknown = requests.post(url, json={"host": "h1", "action": "explode"})
    assert unknown.status_code == 400 and "explode" in unknown.json()["error"]
