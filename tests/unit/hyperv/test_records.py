"""Records parsed from objects shaped exactly like pypsrp's deserialized GenericComplexObject."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from pypsrp.complex_objects import GenericComplexObject

from jobs.hyperv.records import (
    MemoryRecord,
    NetAdapterRecord,
    SnapshotRecord,
    VmRecord,
    parse_datetime,
    parse_timespan,
    split_ips,
)


def enum(name: str, value: int) -> GenericComplexObject:
    obj = GenericComplexObject()
    obj.types = ["Microsoft.HyperV.PowerShell.VMState", "System.Enum", "System.ValueType", "System.Object"]
    obj.to_string = name
    obj.property_sets = [value]
    return obj


def hv_object(type_name: str, adapted: dict, extended: dict | None = None) -> GenericComplexObject:
    obj = GenericComplexObject()
    obj.types = [type_name, "System.Object"]
    obj.adapted_properties = adapted
    obj.extended_properties = extended or {}
    return obj


def test_vm_enums_by_name_times_parsed_sizes_in_bytes() -> None:
    vm_id = uuid.uuid4()
    obj = hv_object("Microsoft.HyperV.PowerShell.VirtualMachine", {
        "Name": "web01", "Id": vm_id, "State": enum("Running", 2), "Uptime": "P1DT2H3M4.5S",
        "CPUUsage": 7, "ProcessorCount": 4, "MemoryAssigned": 2147483648, "MemoryDemand": 1073741824,
        "MemoryStartup": 2147483648, "DynamicMemoryEnabled": True, "ReplicationMode": enum("Primary", 1),
        "ReplicationState": enum("Replicating", 4), "ReplicationHealth": enum("Normal", 1),
        "CreationTime": "2024-05-01T10:00:00.1234567+02:00",
    })
    rec = VmRecord.parse("hv-a1", obj)
    assert rec.state == "Running" and rec.replication_mode == "Primary" and rec.replication_health == "Normal"
    assert rec.uptime_s == 93784.5
    assert rec.id == str(vm_id)
    assert rec.memory_assigned == 2 * 1024**3 and rec.dynamic_memory is True
    assert rec.creation_time == datetime(2024, 5, 1, 8, 0, 0, 123456, tzinfo=timezone.utc)


def test_missing_properties_become_none() -> None:
    rec = VmRecord.parse("h", hv_object("Microsoft.HyperV.PowerShell.VirtualMachine", {"Name": "old"}))
    assert rec.name == "old" and rec.state is None and rec.uptime_s is None and rec.replication_mode is None
    mem = MemoryRecord.parse("h", hv_object("VMMemory", {}))
    assert mem.vm_name == "" and mem.buffer is None


def test_alias_in_extended_properties() -> None:
    obj = hv_object("Microsoft.HyperV.PowerShell.VirtualMachine", {}, {"VMName": "aliased"})
    assert VmRecord.parse("h", obj).name == "aliased"


def test_adapter_ips_split() -> None:
    obj = hv_object("Microsoft.HyperV.PowerShell.VMNetworkAdapter", {
        "VMName": "web01", "Name": "Network Adapter", "MacAddress": "00155D010203", "SwitchName": "ext",
        "IPAddresses": ["10.0.4.7", "fe80::1%3", "2001:db8::7", "junk"], "AllowTeaming": enum("On", 0),
    })
    rec = NetAdapterRecord.parse("hv-a1", obj)
    assert rec.ipv4 == ["10.0.4.7"] and rec.ipv6 == ["fe80::1%3", "2001:db8::7"]
    assert rec.allow_teaming == "On"
    assert split_ips([]) == ([], [])


def test_snapshot_and_memory() -> None:
    snap = SnapshotRecord.parse("h", hv_object("VMSnapshot", {
        "VMName": "db", "Name": "before-upgrade", "SnapshotType": enum("Standard", 0),
        "CreationTime": "2024-01-02T03:04:05Z", "ParentSnapshotName": None}))
    assert snap.snapshot_type == "Standard" and snap.parent_name is None
    assert snap.creation_time == datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    mem = MemoryRecord.parse("h", hv_object("VMMemory", {"VMName": "db", "Buffer": 20, "Priority": 50,
                                                         "DynamicMemoryEnabled": False, "Maximum": 1 << 40}))
    assert (mem.buffer, mem.priority, mem.dynamic, mem.maximum) == (20, 50, False, 1 << 40)


def test_time_parsers() -> None:
    assert parse_timespan("PT0S") == 0 and parse_timespan("-PT1.5S") == -1.5
    assert parse_timespan("1.02:03:04.5") == 93784.5 and parse_timespan("00:00:10") == 10
    assert parse_timespan("garbage") is None and parse_timespan(None) is None
    assert parse_datetime("2024-05-01T10:00:00") == datetime(2024, 5, 1, 10, tzinfo=timezone.utc)
    assert parse_datetime("not a date") is None
    # As Windows writes them (7 digits, the host's offset), in UTC so hosts in different zones compare alike.
    eastern = parse_datetime("2018-06-13T18:46:27.9270288-05:00")
    assert eastern == datetime(2018, 6, 13, 23, 46, 27, 927028, tzinfo=timezone.utc) and eastern.utcoffset().seconds == 0
    assert parse_datetime("2018-06-13T23:46:27.9270288+00:00") == eastern
