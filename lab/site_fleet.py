"""A disaster-recovery fleet: two sites of equal size, every VM replicated to the other site, with realistic boot
times. Big enough for site failover at scale (the default: 10 hosts, 240 VMs, all replicated).

Host ``hv-a01`` ... in site-a replicates to ``hv-b01`` ... in site-b and the other way round. VM names carry a
role, so recovery plans can order them by pattern: ``dc-0101``, ``fw-0102``, ``sql-0103`` ... (role, host number,
slot); the roles repeat in boot order on every host (identity and network first, then data, then applications).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lab.fleet_file import fleet_from_dict
from lab.model import Fleet

# One host's VMs by role, in the order a recovery plan would bring them up.
ROLES = ("dc", "fw", "sql", "sql", "file", "app", "app", "app", "web", "web", "web", "web", "mail", "log")


def site_fleet_data(hosts: int = 10, vms_per_host: int = 24, boot: float | str = "realistic") -> dict[str, Any]:
    """The fleet as fleet-file data (``lab.fleet_file`` format): ``hosts`` must be even (one partner each)."""
    if hosts < 2 or hosts % 2 or not 1 <= vms_per_host <= 99:
        raise ValueError("a site fleet needs an even number of hosts (2 or more) and 1 to 99 VMs per host")
    pairs = hosts // 2
    data: dict[str, Any] = {"boot_seconds": boot, "hosts": []}
    for side, other, site in (("a", "b", "site-a"), ("b", "a", "site-b")):
        for i in range(1, pairs + 1):
            number = i if side == "a" else pairs + i
            vms = []
            for j in range(vms_per_host):
                role = ROLES[j % len(ROLES)]
                vms.append({"name": f"{role}-{number:02d}{j + 1:02d}", "cpus": 2, "memory": {"startup_mb": 2048},
                            "adapters": [{"switch": "vSwitch-LAN", "ipv4": [f"10.{number}.{j // 200}.{j % 200 + 10}"],
                                          "mac": f"00155D{number:02X}{j:02X}{0xA0 if side == 'a' else 0xB0:02X}"}],
                            "replica": {"to": f"hv-{other}{i:02d}", "frequency_sec": 300,
                                        "recovery_history": 2, "last_replication_s": 30 + j}})
            data["hosts"].append({"name": f"hv-{side}{i:02d}", "site": site, "vms": vms})
    return data


def site_fleet(hosts: int = 10, vms_per_host: int = 24, boot: float | str = "realistic",
               now: datetime | None = None) -> Fleet:
    return fleet_from_dict(site_fleet_data(hosts, vms_per_host, boot), now)
