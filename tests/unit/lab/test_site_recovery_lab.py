"""The lab for site recovery: a whole site loses power and comes back, a started VM's heartbeat arrives only after
its boot time on the fleet clock (Get-VM Heartbeat and Get-VMIntegrationService agree), a VM can be made to never
report heartbeat, and the two-site fleet has the shape site failover at scale needs."""

from __future__ import annotations

from typing import Any

import click
import pytest

from lab.cli import _load_fleet
from lab.clock import ManualClock
from lab.cmdlets import HyperVEngine
from lab.fleet_file import boot_seconds, default_fleet, fleet_from_dict
from lab.model import Fleet
from lab.site_fleet import site_fleet
from tests.support.lab_io import NOW, cmd, run, wire


def _one(fleet: Fleet, host: str, cmdlet: str, **params: Any) -> Any:
    io = run(HyperVEngine(fleet, host), cmd(cmdlet, ErrorAction="Stop", **params))
    assert io.failed is None and not io.errors, (io.failed, io.errors)
    [obj] = [wire(o) for o in io.out]
    return obj


def _heartbeat(fleet: Fleet, host: str, vm: str) -> str:
    return str(_one(fleet, host, "Get-VM", Name=[vm]).Heartbeat)


def _service(fleet: Fleet, host: str, vm: str) -> Any:
    return _one(fleet, host, "Get-VMIntegrationService", VMName=[vm], Name=["Heartbeat"]).PrimaryOperationalStatus


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


def _fleet(clock: ManualClock, boot: Any = 30) -> Fleet:
    data = {"boot_seconds": boot, "hosts": [
        {"name": "hv-a1", "site": "site-a", "vms": [{"name": "dc01", "replica": {"to": "hv-b1"}},
                                                    {"name": "web01", "state": "Off"}]},
        {"name": "hv-a2", "site": "site-a", "vms": [{"name": "sql01", "replica": {"to": "hv-b1"}}]},
        {"name": "hv-b1", "site": "site-b", "vms": [{"name": "dc02"}]}]}
    fleet = fleet_from_dict(data, now=NOW)
    fleet.clock = clock
    return fleet


def test_site_power_loss_turns_off_every_host_of_the_site_and_recover_brings_them_back(clock):
    fleet = _fleet(clock)
    result = fleet.apply_control("power_loss", {"site": "site-a"})
    assert result["site"] == "site-a" and [r["host"] for r in result["hosts"]] == ["hv-a1", "hv-a2"]
    assert not fleet.hosts["hv-a1"].powered and not fleet.hosts["hv-a2"].powered and fleet.hosts["hv-b1"].powered
    assert fleet.vm("hv-a1", "dc01").state == "Off" and fleet.vm("hv-a2", "sql01").state == "Off"
    assert fleet.vm("hv-b1", "dc01").replication.health == "Critical"  # the replica side sees its primary gone
    assert fleet.vm("hv-b1", "dc02").state == "Running"
    back = fleet.apply_control("recover", {"site": "SITE-A"})
    assert [r["started"] for r in back["hosts"]] == [["dc01"], ["sql01"]]
    assert fleet.hosts["hv-a1"].powered and fleet.vm("hv-a1", "dc01").state == "Running"


def test_power_controls_need_a_host_or_a_known_site(clock):
    fleet = _fleet(clock)
    with pytest.raises(ValueError, match="no site named 'site-z' \\(sites: site-a, site-b\\)"):
        fleet.apply_control("power_loss", {"site": "site-z"})
    with pytest.raises(ValueError, match="either host or site"):
        fleet.apply_control("power_loss", {})
    with pytest.raises(ValueError, match="either host or site"):
        fleet.apply_control("recover", {"host": "hv-a1", "site": "site-a"})
    assert fleet.apply_control("power_loss", {"host": "hv-a1"})["host"] == "hv-a1"  # the one-host form stays


def test_a_started_vm_reports_heartbeat_only_after_its_boot_time(clock):
    fleet = _fleet(clock, boot=30)
    assert _heartbeat(fleet, "hv-a1", "dc01") == "OkApplicationsHealthy"  # running since before the load
    run(HyperVEngine(fleet, "hv-a1"), cmd("Start-VM", Name=["web01"], ErrorAction="Stop"))
    assert _heartbeat(fleet, "hv-a1", "web01") == "NoContact"
    assert str(_service(fleet, "hv-a1", "web01")) == "NoContact"
    clock.advance(29)
    assert _heartbeat(fleet, "hv-a1", "web01") == "NoContact"
    clock.advance(1)
    assert _heartbeat(fleet, "hv-a1", "web01") == "OkApplicationsHealthy"
    assert str(_service(fleet, "hv-a1", "web01")) == "Ok"


def test_a_vm_restarted_by_site_recovery_boots_again(clock):
    fleet = _fleet(clock, boot=30)
    fleet.apply_control("power_loss", {"site": "site-a"})
    clock.advance(600)
    fleet.apply_control("recover", {"site": "site-a"})
    assert _heartbeat(fleet, "hv-a2", "sql01") == "NoContact"
    clock.advance(30)
    assert _heartbeat(fleet, "hv-a2", "sql01") == "OkApplicationsHealthy"


def test_the_heartbeat_control_makes_a_vm_never_report_heartbeat_and_back(clock):
    fleet = _fleet(clock, boot=0)
    summary = fleet.apply_control("heartbeat", {"host": "hv-b1", "vm": "dc02", "never": True})
    assert summary["heartbeat"] == "NoContact"
    clock.advance(86400)
    assert _heartbeat(fleet, "hv-b1", "dc02") == "NoContact"
    assert str(_service(fleet, "hv-b1", "dc02")) == "NoContact"
    fleet.apply_control("heartbeat", {"host": "hv-b1", "vm": "dc02", "never": False})
    assert _heartbeat(fleet, "hv-b1", "dc02") == "OkApplicationsHealthy"
    with pytest.raises(ValueError, match="unknown heartbeat field"):
        fleet.apply_control("heartbeat", {"host": "hv-b1", "vm": "dc02", "forever": True})


def test_the_replica_vm_boots_like_its_primary(clock):
    fleet = _fleet(clock, boot="realistic")
    primary, replica = fleet.vm("hv-a1", "dc01"), fleet.vm("hv-b1", "dc01")
    assert replica.boot_seconds == primary.boot_seconds == boot_seconds("realistic", "dc01")


def test_realistic_boot_times_are_20_to_60_seconds_and_the_same_on_every_run():
    times = [boot_seconds("realistic", f"vm{i}") for i in range(200)]
    assert min(times) >= 20 and max(times) <= 60 and len(set(times)) > 20
    assert boot_seconds("realistic", "dc01") == boot_seconds("realistic", "dc01")
    with pytest.raises(ValueError, match="0 or more"):
        boot_seconds(-1, "dc01")


def test_the_default_fleet_keeps_heartbeat_at_once(clock):
    fleet = default_fleet(now=NOW)
    fleet.clock = clock
    run(HyperVEngine(fleet, "hv-a1"), cmd("Start-VM", Name=["mon01"], ErrorAction="Stop"))  # mon01 is Off
    assert _heartbeat(fleet, "hv-a1", "mon01") == "OkApplicationsHealthy"


def test_the_site_fleet_has_over_200_replicated_vms_on_10_hosts_in_two_sites():
    fleet = site_fleet(now=NOW)
    assert len(fleet.hosts) == 10
    sites = {h.name: h.site for h in fleet.hosts.values()}
    assert sorted(set(sites.values())) == ["site-a", "site-b"]
    primaries = [(h, vm) for h in fleet.hosts.values() for vm in h.vms
                 if vm.replication is not None and vm.replication.mode == "Primary"]
    assert len(primaries) >= 200
    for host, vm in primaries:
        replica_host = fleet.host(vm.replication.replica_server)
        assert replica_host.site != host.site and replica_host.vm_by_id(vm.id) is not None
        assert 20 <= vm.boot_seconds <= 60
    assert sum(1 for h, _ in primaries if h.site == "site-a") == 120
    with pytest.raises(ValueError, match="even number of hosts"):
        site_fleet(hosts=3)


def test_hvbot_lab_serves_the_site_fleet_on_request(tmp_path):
    fleet = _load_fleet(None, None, None, sites=True)
    assert len(fleet.hosts) == 10 and sum(len(h.vms) for h in fleet.hosts.values()) == 10 * 24 * 2  # with replicas
    assert len(_load_fleet(None, 4, 3, sites=True).hosts) == 4
    with pytest.raises(click.UsageError, match="even number of hosts"):
        _load_fleet(None, 3, 3, sites=True)
    with pytest.raises(click.UsageError, match="not both"):
        _load_fleet(tmp_path / "fleet.yml", None, None, sites=True)
