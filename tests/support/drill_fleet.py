"""A lab fleet for failover drills: N replicated VMs on hv-a1 (site-a) with replicas on hv-b1 (site-b), their
adapters' test switch set, and boot times alternating between two values (the lab's clock decides heartbeats)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lab.fleet_file import fleet_from_dict
from lab.model import Fleet

TEST_SWITCH = "vSwitch-Test"


def drill_fleet(count: int = 20, boots: tuple[float, float] = (30, 60), test_switch: str = TEST_SWITCH,
                production_switch_vm: str | None = None) -> Fleet:
    """``production_switch_vm`` gets the production switch as its test switch (a drill must refuse it)."""
    vms: list[dict[str, Any]] = []
    for i in range(1, count + 1):
        name = f"dr{i:02d}"
        switch = "vSwitch-LAN" if name == production_switch_vm else test_switch
        vms.append({"name": name, "state": "Running", "boot_seconds": boots[i % 2],
                    "adapters": [{"name": "LAN", "switch": "vSwitch-LAN", "mac": f"00155D0A{i:02X}01",
                                  "ipv4": [f"10.9.0.{i}"], "test_switch": switch}],
                    "replica": {"to": "hv-b1", "frequency_sec": 300, "recovery_history": 1, "last_replication_s": 90}})
    data = {"hosts": [{"name": "hv-a1", "site": "site-a", "vms": vms}, {"name": "hv-b1", "site": "site-b", "vms": []}]}
    return fleet_from_dict(data)


def boot_of(index: int, boots: tuple[float, float] = (30, 60)) -> float:
    return boots[index % 2]


def write_plan(directory: Path, name: str = "dr-plan", count: int = 20) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    half = count // 2
    plan = {"name": name, "groups": [
        {"name": "first", "vms": [f"dr{i:02d}" for i in range(1, half + 1)]},
        {"name": "rest", "vms": ["dr*"]}]}
    path = directory / f"{name}.yml"
    path.write_text(yaml.safe_dump(plan))
    return path


def lab_test_vms(fleet: Fleet, host: str = "hv-b1") -> list[Any]:
    with fleet.lock:
        return [vm for vm in fleet.host(host).vms if vm.test_of is not None]
