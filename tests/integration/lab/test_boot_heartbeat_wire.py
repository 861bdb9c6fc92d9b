"""A booting VM's heartbeat as pypsrp receives it from the lab over HTTP: Get-VM Heartbeat and Get-VMIntegrationService
'Heartbeat' say NoContact until the VM's boot time has passed on the fleet clock, then OK; a whole site's power
loss takes every host of the site off the network at once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Callable

import pytest
from pypsrp.exceptions import WinRMTransportError
from pypsrp.powershell import PowerShell, RunspacePool
from requests.exceptions import ConnectionError as RequestsConnectionError

from lab.clock import ManualClock
from lab.fleet import Lab
from lab.site_fleet import site_fleet
from tests.support.fixtures_lab import lab_wsman


def _invoke(lab: Lab, host: str, cmdlet: str, **params: Any) -> list[Any]:
    with RunspacePool(lab_wsman(lab, host)) as pool:
        ps = PowerShell(pool).add_cmdlet(cmdlet).add_parameters(params)
        out = ps.invoke()
        assert not ps.had_errors and not ps.streams.error, ps.streams.error
    return out


def _status(lab: Lab, host: str, vm: str) -> tuple[str, str]:
    [got] = _invoke(lab, host, "Get-VM", Name=[vm])
    [service] = _invoke(lab, host, "Get-VMIntegrationService", VMName=[vm], Name=["Heartbeat"])
    return str(got.adapted_properties["Heartbeat"]), str(service.adapted_properties["PrimaryOperationalStatus"])


def test_a_started_replica_reports_heartbeat_after_its_boot_time(make_lab: Callable[..., Lab]) -> None:
    clock = ManualClock(datetime.now(UTC))
    fleet = site_fleet(hosts=2, vms_per_host=2, now=clock.now)
    fleet.clock = clock
    lab = make_lab(fleet=fleet)
    boot = fleet.vm("hv-b01", "dc-0101").boot_seconds
    assert _status(lab, "hv-a01", "dc-0101") == ("OkApplicationsHealthy", "Ok")
    _invoke(lab, "hv-b01", "Start-VMFailover", VMName=["dc-0101"], Confirm=False)
    _invoke(lab, "hv-b01", "Start-VM", Name=["dc-0101"], Confirm=False)
    assert _status(lab, "hv-b01", "dc-0101") == ("NoContact", "NoContact")
    clock.advance(boot - 1)
    assert _status(lab, "hv-b01", "dc-0101") == ("NoContact", "NoContact")
    clock.advance(1)
    assert _status(lab, "hv-b01", "dc-0101") == ("OkApplicationsHealthy", "Ok")


def test_site_power_loss_takes_every_host_of_the_site_off_the_network(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(fleet=site_fleet(hosts=4, vms_per_host=1))
    result = lab.control(None, "power_loss", {"site": "site-a"})
    assert [h["host"] for h in result["hosts"]] == ["hv-a01", "hv-a02"]
    for host in ("hv-a01", "hv-a02"):
        with pytest.raises((WinRMTransportError, RequestsConnectionError)):
            _invoke(lab, host, "Get-VM")
    assert len(_invoke(lab, "hv-b01", "Get-VM")) == 2  # its own VM and dc-0101's replica
    lab.control(None, "recover", {"site": "site-a"})
    assert len(_invoke(lab, "hv-a01", "Get-VM")) == 2
