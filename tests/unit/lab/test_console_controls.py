"""The lab controls the console's `lab` commands use: a VM found by name (its own copy, not the replica) for the
heartbeat switch, and the read-only `vms` listing the tour checks its steps against."""

from __future__ import annotations

import pytest

from lab.fleet_file import fleet_from_dict
from lab.model import Fleet
from tests.support.lab_io import NOW


def _fleet() -> Fleet:
    return fleet_from_dict({"hosts": [
        {"name": "hv-a1", "site": "site-a", "vms": [{"name": "web01", "replica": {"to": "hv-b1"}},
                                                    {"name": "twin"}]},
        {"name": "hv-b1", "site": "site-b", "vms": [{"name": "twin"}]}]}, now=NOW)


def test_heartbeat_without_a_host_switches_the_vms_own_copy() -> None:
    fleet = _fleet()
    result = fleet.apply_control("heartbeat", {"vm": "WEB01", "never": True})
    assert result["host"] == "hv-a1" and result["heartbeat"] == "NoContact"
    assert fleet.vm("hv-a1", "web01").never_heartbeat and not fleet.vm("hv-b1", "web01").never_heartbeat
    assert fleet.apply_control("heartbeat", {"vm": "web01", "never": False})["heartbeat"] == "OkApplicationsHealthy"


def test_heartbeat_by_name_refuses_an_unknown_or_ambiguous_vm() -> None:
    fleet = _fleet()
    with pytest.raises(ValueError, match="no VM named 'ghost' on any host"):
        fleet.apply_control("heartbeat", {"vm": "ghost", "never": True})
    with pytest.raises(ValueError, match=r"VM 'twin' is on several hosts \(hv-a1, hv-b1\): name the host"):
        fleet.apply_control("heartbeat", {"vm": "twin", "never": True})
    assert fleet.apply_control("heartbeat", {"vm": "twin", "host": "hv-b1", "never": True})["host"] == "hv-b1"


def test_vms_lists_every_copy_with_state_and_replication() -> None:
    fleet = _fleet()
    rows = {r["host"]: r for r in fleet.apply_control("vms", {"vm": "web01"})["vms"]}
    assert rows["hv-a1"]["mode"] == "Primary" and rows["hv-a1"]["state"] == "Running"
    assert rows["hv-b1"]["mode"] == "Replica" and rows["hv-b1"]["state"] == "Off"
    assert {r["replication_state"] for r in rows.values()} == {"Replicating"}
    fleet.apply_control("power_loss", {"site": "site-a"})
    after = {r["host"]: r for r in fleet.apply_control("vms", {"vm": "web01"})["vms"]}
    assert after["hv-a1"]["powered"] is False and after["hv-a1"]["state"] == "Off"
    assert after["hv-b1"]["health"] == "Critical"
    assert len(fleet.apply_control("vms", {})["vms"]) == 4
    with pytest.raises(ValueError, match="unknown vms field"):
        fleet.apply_control("vms", {"name": "web01"})
