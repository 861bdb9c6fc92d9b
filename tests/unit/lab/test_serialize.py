"""Objects travel with Hyper-V type names, every class property, enums as name + int, DT/TS, typed lists."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from xml.etree import ElementTree as ET

from psrpcore.types._serializer import serialize

from lab import hvdata
from lab.fleet_file import default_fleet
from lab.hvobjects import Live, to_psobject
from tests.support.lab_io import wire

NOW = datetime(2025, 6, 2, 8, 0, tzinfo=timezone.utc)


def _fw() -> tuple:
    fleet = default_fleet(now=NOW)
    return fleet, fleet.hosts["hv-a1"], fleet.vm("hv-a1", "fw01")


def test_vm_object_type_names_and_all_properties() -> None:
    _, host, vm = _fw()
    obj = wire(to_psobject(Live("VirtualMachine", host, vm), NOW))
    assert obj.PSObject.type_names[0] == "Deserialized.Microsoft.HyperV.PowerShell.VirtualMachine"
    assert obj.PSObject.type_names[-1] == "Deserialized.System.Object"
    names = {p.name for p in obj.PSObject.adapted_properties}
    assert names == set(hvdata.class_properties("VirtualMachine"))


def test_enum_datetime_timespan_and_sizes_on_the_wire() -> None:
    _, host, vm = _fw()
    xml = ET.tostring(serialize(to_psobject(Live("VirtualMachine", host, vm), NOW), None)).decode()
    obj = wire(to_psobject(Live("VirtualMachine", host, vm), NOW))
    assert str(obj.State) == "Running" and int(obj.State) == 2
    assert obj.State.PSObject.type_names[:4] == ["Deserialized.Microsoft.HyperV.PowerShell.VMState",
                                                 "Deserialized.System.Enum", "Deserialized.System.ValueType",
                                                 "Deserialized.System.Object"]
    assert (str(obj.ReplicationMode), int(obj.ReplicationMode)) == ("Primary", 1)
    assert obj.Uptime == timedelta(hours=72)
    assert '<TS N="Uptime">P3D</TS>' in xml and '<DT N="CreationTime">' in xml
    assert f'<I64 N="MemoryStartup">{4096 * 1024 * 1024}</I64>' in xml
    assert obj.CreationTime == vm.creation_time
    assert obj.NetworkAdapters == ["VMNetworkAdapter (Name = 'LAN', VMName = 'fw01') [VMId = '%s']" % vm.id,
                                   "VMNetworkAdapter (Name = 'WAN', VMName = 'fw01') [VMId = '%s']" % vm.id]


def test_adapter_string_array_and_onoff_enum() -> None:
    _, host, vm = _fw()
    xml = ET.tostring(serialize(to_psobject(Live("VMNetworkAdapter", host, vm, vm.adapters[0]), NOW), None)).decode()
    assert "<T>System.String[]</T>" in xml
    obj = wire(to_psobject(Live("VMNetworkAdapter", host, vm, vm.adapters[0]), NOW))
    assert obj.IPAddresses == ["10.0.1.1", "fd00:1::1"]
    assert (str(obj.AllowTeaming), int(obj.AllowTeaming)) == ("On", 0)  # OnOffState: On=0


def test_replication_nullable_datetimes_and_test_vm_text() -> None:
    fleet = default_fleet(now=NOW)
    host = fleet.hosts["hv-b1"]
    vm = fleet.vm("hv-b1", "fw01")
    obj = wire(to_psobject(Live("VMReplicationHealth", host, vm), NOW))
    assert (str(obj.ReplicationState), int(obj.ReplicationState)) == ("Replicating", 4)
    assert obj.LastReplicationTime == vm.replication.last_replication_time  # type: ignore[union-attr]
    assert obj.TestVirtualMachine is None and obj.PendingReplicationSize == 0
    assert obj.AverageReplicationLatency == timedelta(seconds=4)


def test_two_thousand_objects_serialize_in_bounded_time() -> None:
    fleet = default_fleet(now=NOW)
    host = fleet.hosts["hv-a1"]
    lives = [Live("VMNetworkAdapter", host, vm, a) for vm in host.vms for a in vm.adapters]
    start = time.perf_counter()
    for i in range(2000):
        serialize(to_psobject(lives[i % len(lives)], NOW), None)
    elapsed = time.perf_counter() - start
    print(f"2000 adapters built+serialized in {elapsed:.2f}s")
    assert elapsed < 60  # generous: a regression guard, not a speed target (see bench/)
