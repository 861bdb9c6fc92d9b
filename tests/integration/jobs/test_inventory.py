"""Inventory operations against the real lab (WS-Man + PSRP over HTTP, HyperVEngine on the model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from jobs.hyperv.fleet import Fleet
from jobs.hyperv.hosts import load_inventory
from jobs.hyperv.settings import JobSettings
from jobs.inventory.queries import checkpoints, find_ips, list_vms, memory, teaming
from jobs.report import Report
from lab.fleet_file import fleet_from_dict

pytest.importorskip("lab.cmdlets", reason="lab/cmdlets.py (HyperVEngine) is not in the checkout yet")


@pytest.fixture(scope="module")
def fleet(lab: Any, lab_inventory_path: Path) -> Iterator[Fleet]:
    with Fleet(load_inventory(lab_inventory_path), JobSettings(deadline_s=10)) as f:
        yield f


def _running(lab: Any) -> Iterator[tuple[str, Any]]:
    for host in lab.fleet.hosts.values():
        for vm in host.vms:
            if vm.state == "Running":
                yield host.name, vm


def test_ips_of_running_vms_across_all_hosts(lab: Any, fleet: Fleet) -> None:
    report = find_ips(fleet)
    assert report.errors == [] and report.hosts_ok == list(lab.fleet.hosts)
    got = {(r["host"], r["vm"], r["adapter"], r["mac"], r["switch"], tuple(r["ipv4"]), tuple(r["ipv6"]))
           for r in report.rows}
    want = {(h, vm.name, a.name, a.mac, a.switch_name, tuple(a.ipv4 if vm.reports_ips() else ()),
             tuple(a.ipv6 if vm.reports_ips() else ())) for h, vm in _running(lab) for a in vm.adapters}
    assert got == want and len(report.rows) == len(want)
    assert Report.from_dict(report.to_dict()) == report


def test_ip_listing_is_one_invocation_per_host(lab: Any, fleet: Fleet) -> None:
    host = next(iter(lab.fleet.hosts))
    find_ips(fleet, host=host)  # warm: the pool is open
    fleet.session(host).settle()
    before = fleet.session(host).exchanges
    assert find_ips(fleet, host=host).rows
    fleet.session(host).settle()
    # Get-VM and Get-VM | Get-VMNetworkAdapter as two statements: Command + Receive(s) + Signal once;
    # two separate pipelines would cost at least 6 exchanges.
    assert fleet.session(host).exchanges - before <= 4


def test_same_vm_name_on_several_hosts_is_reported_per_host(lab: Any, fleet: Fleet) -> None:
    holders = sorted(h.name for h in lab.fleet.hosts.values() for vm in h.vms if vm.name == "app01")
    assert len(holders) > 1
    rows = find_ips(fleet, ["app01"]).rows
    assert sorted({r["host"] for r in rows}) == holders and all(r["vm"] == "app01" for r in rows)
    assert sorted(r["host"] for r in list_vms(fleet, "app01").rows) == holders


def test_who_holds_an_ip_several_ips_or_a_prefix(lab: Any, fleet: Fleet) -> None:
    addrs = [(h, vm.name, ip) for h, vm in _running(lab) if vm.reports_ips() for a in vm.adapters for ip in a.ipv4]
    host, vm_name, ip = addrs[0]
    assert {(r["host"], r["vm"]) for r in find_ips(fleet, [ip]).rows} == {(h, v) for h, v, i in addrs if i == ip}
    two = [addrs[0][2], addrs[-1][2]]
    assert {(r["host"], r["vm"]) for r in find_ips(fleet, two).rows} == {(h, v) for h, v, i in addrs if i in two}
    prefix = ".".join(ip.split(".")[:3]) + ".0/24"
    expected = {(h, v) for h, v, i in addrs if i.startswith(prefix[:-4])}
    assert {(r["host"], r["vm"]) for r in find_ips(fleet, [prefix]).rows} == expected
    assert find_ips(fleet, ["192.0.2.254"]).rows == []


def test_vms_with_state_memory_and_replication(lab: Any, fleet: Fleet) -> None:
    report = list_vms(fleet)
    got = {(r["host"], r["vm"]): r for r in report.rows}
    want = {(h.name, vm.name): vm for h in lab.fleet.hosts.values() for vm in h.vms}
    assert set(got) == set(want)
    for key, vm in want.items():
        row = got[key]
        assert row["state"] == vm.state and row["processors"] == vm.cpu_count
        assert row["memory_assigned"] == vm.memory_assigned() and row["memory_demand"] == vm.memory_demand()
        assert row["replication_mode"] == (vm.replication.mode if vm.replication else "None")
        if vm.replication:
            assert row["replication_health"] == vm.replication.health
        assert (row["uptime_s"] or 0) >= 0
    filtered = list_vms(fleet, "web0*", host="hv-a1")
    assert {r["vm"] for r in filtered.rows} == {v.name for v in lab.fleet.hosts["hv-a1"].vms if v.name.startswith("web0")}


def test_dynamic_memory_per_vm(lab: Any, fleet: Fleet) -> None:
    rows = {(r["host"], r["vm"]): r for r in memory(fleet).rows}
    for h in lab.fleet.hosts.values():
        for vm in h.vms:
            r = rows[(h.name, vm.name)]
            m = vm.memory
            assert (r["dynamic"], r["startup"], r["minimum"], r["maximum"], r["buffer"], r["priority"]) == (
                m.dynamic, m.startup, m.minimum, m.maximum, m.buffer, m.priority)
            assert r["assigned"] == vm.memory_assigned() and r["demand"] == vm.memory_demand()
            assert r["at_maximum"] == bool(m.dynamic and vm.memory_assigned() >= m.maximum)
    one = memory(fleet, vm="sql01")
    assert {(r["host"], r["vm"]) for r in one.rows} == {(h.name, "sql01") for h in lab.fleet.hosts.values()
                                                       if h.vms_named("sql01")}
    assert one.errors == []


def _memory_vm(name: str, startup_mb: int, maximum_mb: int, buffer: int, dynamic: bool = True) -> dict[str, Any]:
    return {"name": name, "memory": {"dynamic": dynamic, "startup_mb": startup_mb, "minimum_mb": 512,
                                     "maximum_mb": maximum_mb, "buffer": buffer}}


def test_at_max_lists_vms_whose_assigned_memory_reached_the_maximum_worst_first(make_lab: Any,
                                                                               tmp_path: Path) -> None:
    # The lab's guest demands 60% of startup and is assigned demand + buffer, capped at the maximum.
    fleet_data = {"hosts": [
        {"name": "hv-m1", "site": "site-a", "vms": [
            _memory_vm("capped", 1024, 1536, 200),     # wants 1843 MiB: assigned 1536 = max, demand 40% of max
            _memory_vm("roomy", 2048, 8192, 20),       # assigned below max
            _memory_vm("static", 1024, 1024, 20, dynamic=False)]},  # assigned = max, but no dynamic memory
        {"name": "hv-m2", "site": "site-b", "vms": [
            _memory_vm("starved", 2048, 2048, 100),    # wants 2458 MiB: assigned 2048 = max, demand 60% of max
            _memory_vm("capped", 1024, 1536, 200)]}]}  # the same name elsewhere: its own row
    running = make_lab(fleet=fleet_from_dict(fleet_data))
    with Fleet(load_inventory(running.write_inventory(tmp_path / "inv.yml")), JobSettings(deadline_s=10)) as f:
        everything = memory(f)
        at_max = memory(f, at_max=True)
        one = memory(f, vm="roomy", at_max=True)
    assert {r["vm"]: r["at_maximum"] for r in everything.rows if r["host"] == "hv-m1"} == {
        "capped": True, "roomy": False, "static": False}
    assert [(r["host"], r["vm"]) for r in at_max.rows] == [("hv-m2", "starved"), ("hv-m1", "capped"),
                                                           ("hv-m2", "capped")]
    assert all(r["assigned"] == r["maximum"] for r in at_max.rows) and at_max.errors == []
    assert one.rows == [] and one.errors == []  # present, just not at its maximum: no "not found"


def test_teaming_option_per_adapter(lab: Any, fleet: Fleet) -> None:
    got = {(r["host"], r["vm"], r["adapter"]): r["allow_teaming"] for r in teaming(fleet).rows}
    want = {(h.name, vm.name, a.name): a.allow_teaming for h in lab.fleet.hosts.values() for vm in h.vms
            for a in vm.adapters}
    assert got == want
    fw = teaming(fleet, vm="fw01", host="hv-a1")
    assert {r["adapter"] for r in fw.rows} == {a.name for a in lab.fleet.vm("hv-a1", "fw01").adapters}


def test_checkpoints_per_vm(lab: Any, fleet: Fleet) -> None:
    report = checkpoints(fleet, "web01")
    want = []
    for h in lab.fleet.hosts.values():
        for vm in h.vms_named("web01"):
            by_id = {c.id: c.name for c in vm.checkpoints}
            want += [(h.name, c.name, c.type, by_id.get(c.parent_id) if c.parent_id else None) for c in vm.checkpoints]
    got = [(r["host"], r["name"], r["type"], r["parent"]) for r in report.rows]
    assert sorted(got, key=str) == sorted(want, key=str) and len(want) > 0
    assert all(r["created"] for r in report.rows)
    missing = checkpoints(fleet, "no-such-vm")
    assert missing.rows == [] and [e["kind"] for e in missing.errors] == ["not_found"]


def test_find_vm_names_holders_with_replication_mode(lab: Any, fleet: Fleet) -> None:
    out = fleet.find_vm("WEB01")
    found = {(loc.host, loc.replication_mode) for locs in out.results.values() for loc in locs}
    assert found == {(h.name, vm.replication.mode if vm.replication else "None")
                     for h in lab.fleet.hosts.values() for vm in h.vms_named("web01")}
