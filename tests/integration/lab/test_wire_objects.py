"""Hyper-V objects as pypsrp receives them from the lab: DateTimes as Windows writes them and nested objects as
their ToString text (hyperv.md §5.2, §5.3), through the real client over HTTP."""

from __future__ import annotations

import re
from typing import Any, Callable

from pypsrp.powershell import PowerShell, RunspacePool

from lab.fleet import Lab
from lab.fleet_file import default_fleet
from tests.support.fixtures_lab import lab_wsman

# The round-trip format of a local DateTime: 7 fraction digits and the host's offset (never "Z").
ROUND_TRIP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}(?P<offset>[+-]\d\d:\d\d)$")


def _one(lab: Lab, host: str, cmdlet: str, **params: Any) -> Any:
    with RunspacePool(lab_wsman(lab, host)) as pool:
        ps = PowerShell(pool).add_cmdlet(cmdlet).add_parameters(params)
        out = ps.invoke()
        assert not ps.had_errors and not ps.streams.error
    return out[0]


def test_datetimes_carry_seven_digits_and_the_hosts_offset(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(fleet=default_fleet())
    primary = _one(lab, "hv-a1", "Get-VMReplication", VMName=["fw01"])  # site A: UTC+01:00
    replica = _one(lab, "hv-b1", "Get-VMReplication", VMName=["fw01"])  # site B: UTC-05:00
    for obj, offset in ((primary, "+01:00"), (replica, "-05:00")):
        text = obj.adapted_properties["LastReplicationTime"]
        match = ROUND_TRIP.match(text)
        assert match and match["offset"] == offset, text
    vm = _one(lab, "hv-b1", "Get-VM", Name=["fw01"])
    assert ROUND_TRIP.match(vm.adapted_properties["CreationTime"])


def test_nested_objects_arrive_as_their_text(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(fleet=default_fleet())
    vm = _one(lab, "hv-a1", "Get-VM", Name=["fw01"])
    (disk,) = vm.adapted_properties["HardDrives"]
    assert disk.startswith("HardDiskDrive (Name = 'Hard Drive on SCSI controller") and "VMName = 'fw01'" in disk
    rep = _one(lab, "hv-b1", "Get-VMReplication", VMName=["fw01"])
    assert rep.adapted_properties["ReplicatedDisks"] == [disk] and rep.adapted_properties["ExcludedDisks"] == []
    adapter = _one(lab, "hv-a1", "Get-VMNetworkAdapter", VMName="fw01", Name="LAN")
    assert adapter.adapted_properties["VlanSetting"] == (
        "VMNetworkAdapterVlanSetting (ParentAdapter = 'LAN', VMName = 'fw01')")
