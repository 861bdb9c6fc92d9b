"""Live Hyper-V objects of a pipeline (``Live``) and their property values, ready for ``lab.serialize``.

Cmdlets pass ``Live`` objects between pipeline stages (``Get-VM | Get-VMNetworkAdapter``); only the final
output is turned into psrpcore objects. Property values follow hyperv.md §2 (sizes in bytes).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psrpcore.types import PSObject

from lab.clixml import HyperVOutput
from lab.clock import HostZone
from lab.model import VM, Checkpoint, Host, NetAdapter, Replication
from lab.serialize import build

MEMORY_SETTING_ID = "4764334d-e001-4176-82ee-5594ec9b530e"
SWITCH_NS = uuid.UUID("0f6c9f3e-2d1a-4c55-9a0b-6b1f1b2d7c11")
HV_PATH = "C:\\ProgramData\\Microsoft\\Windows\\Hyper-V"


@dataclass
class Live:
    """One object flowing through a lab pipeline. ``ps_kind`` is its Hyper-V class (short name)."""

    ps_kind: str
    host: Host
    vm: VM | None = None
    item: Any = None  # NetAdapter, Checkpoint or None

    def __str__(self) -> str:
        return to_string(self)


def vm_text(vm: VM) -> str:
    # ToString of Hyper-V objects: "<Class> (Name = '...') [Id = '...']" (UNCONFIRMED format).
    return f"VirtualMachine (Name = '{vm.name}') [Id = '{vm.id}']"


def adapter_text(vm: VM, adapter: NetAdapter) -> str:
    return f"VMNetworkAdapter (Name = '{adapter.name}', VMName = '{vm.name}') [VMId = '{vm.id}']"


def disk_texts(vm: VM) -> list[str]:
    """The VM's one virtual disk, as a nested HardDiskDrive arrives at serialization depth 1: its ToString (hyperv.md
    §5.2; the text's format is UNCONFIRMED, as for the other Hyper-V objects). Generation 1 boots from IDE."""
    controller = "SCSI" if vm.generation == 2 else "IDE"
    name = f"Hard Drive on {controller} controller number 0 at location 0"
    return [f"HardDiskDrive (Name = '{name}', VMName = '{vm.name}') [Id = 'Microsoft:{vm.id}\\{controller}0:0']"]


def vlan_text(vm: VM, adapter: NetAdapter) -> str:
    return f"VMNetworkAdapterVlanSetting (ParentAdapter = '{adapter.name}', VMName = '{vm.name}')"


def to_string(live: Live) -> str:
    vm = live.vm
    if live.ps_kind == "VirtualMachine" and vm:
        return vm_text(vm)
    if live.ps_kind == "VMNetworkAdapter" and vm:
        return adapter_text(vm, live.item)
    if live.ps_kind == "VMSnapshot" and vm:
        return f"VMSnapshot (Name = '{live.item.name}', VMName = '{vm.name}') [Id = '{live.item.id}']"
    return f"{live.ps_kind} (Name = '{vm.name if vm else live.host.name}')"


# WMI Msvm_ComputerSystem OperationalStatus[1] descriptions [WMI-CS]; the texts Get-VM shows are UNCONFIRMED.
SECONDARY_TEXT = {"ExportingVirtualMachine": "Exporting", "MigratingVirtualMachine": "Migrating",
                  "StorageMigrationPhaseOne": "Migrating", "StorageMigrationPhaseTwo": "Migrating",
                  "MigratingPlannedVm": "Migrating"}


def _status(vm: VM) -> dict[str, Any]:
    values: dict[str, Any] = {"Status": "Operating normally", "StatusDescriptions": ["Operating normally"],
                              "OperationalStatus": ["Ok"], "PrimaryOperationalStatus": "Ok",
                              "PrimaryStatusDescription": "Operating normally"}
    if vm.secondary_status is not None:  # an operation runs: OperationalStatus[1] (§1.2, §4 #6)
        text = SECONDARY_TEXT.get(vm.secondary_status, vm.secondary_status)
        values.update({"Status": text, "StatusDescriptions": ["Operating normally", text],
                       "OperationalStatus": ["Ok", vm.secondary_status],
                       "SecondaryOperationalStatus": vm.secondary_status, "SecondaryStatusDescription": text})
    return values


def _memory_status(vm: VM) -> str:
    if not vm.running or not vm.memory.dynamic:
        return ""
    return "OK"


def _replication_summary(vm: VM) -> dict[str, Any]:
    rep = vm.replication
    if rep is None:
        return {"ReplicationState": "Disabled", "ReplicationHealth": "NotApplicable", "ReplicationMode": "None"}
    return {"ReplicationState": rep.state, "ReplicationHealth": rep.health, "ReplicationMode": rep.mode}


def vm_values(host: Host, vm: VM, now: datetime) -> dict[str, Any]:
    current = vm.current_checkpoint()
    values = {
        "Name": vm.name, "Id": vm.id, "State": vm.state, "Uptime": vm.uptime(now),
        "CPUUsage": vm.cpu_usage if vm.running else 0, "MemoryAssigned": vm.memory_assigned(),
        "MemoryDemand": vm.memory_demand(), "MemoryStatus": _memory_status(vm),
        "MemoryStartup": vm.memory.startup, "MemoryMinimum": vm.memory.minimum,
        "MemoryMaximum": vm.memory.maximum, "DynamicMemoryEnabled": vm.memory.dynamic,
        "ProcessorCount": vm.cpu_count, "Heartbeat": vm.heartbeat(now),
        "IntegrationServicesState": "Up to date", "Generation": vm.generation, "Version": vm.version,
        "Path": HV_PATH, "ConfigurationLocation": HV_PATH, "SnapshotFileLocation": HV_PATH,
        "SmartPagingFilePath": HV_PATH, "CheckpointType": "Production", "AutomaticStartAction": "StartIfRunning",
        "AutomaticStopAction": "Save", "AutomaticCriticalErrorAction": "Pause",
        "AutomaticCriticalErrorActionTimeout": 30, "AutomaticCheckpointsEnabled": False,
        "ParentSnapshotId": current.id if current else None, "ParentSnapshotName": current.name if current else None,
        "NetworkAdapters": [adapter_text(vm, a) for a in vm.adapters], "Notes": vm.notes,
        "HardDrives": disk_texts(vm),
        "CreationTime": vm.creation_time, "ComputerName": host.name, "IsDeleted": False, "IsClustered": False,
        "NumaNodesCount": 1, "NumaSocketCount": 1, "VirtualMachineType": "RealizedVirtualMachine",
        "VirtualMachineSubType": f"Generation{vm.generation}",
    }
    values.update(_status(vm))
    values.update(_replication_summary(vm))
    return values


def adapter_values(host: Host, vm: VM, adapter: NetAdapter) -> dict[str, Any]:
    ips = adapter.ipv4 + adapter.ipv6 if vm.reports_ips() else []
    return {
        "Name": adapter.name, "VMName": vm.name, "VMId": vm.id, "Id": f"Microsoft:{vm.id}\\{adapter.adapter_guid}",
        "VlanSetting": vlan_text(vm, adapter),
        "AdapterId": str(adapter.adapter_guid).upper(), "IPAddresses": ips, "MacAddress": adapter.mac,
        "DynamicMacAddressEnabled": True, "SwitchName": adapter.switch_name,
        "SwitchId": uuid.uuid5(SWITCH_NS, adapter.switch_name) if adapter.switch_name else None,
        "Connected": adapter.switch_name is not None, "Status": ["Ok"] if vm.running else [],
        "StatusDescription": ["OK"] if vm.running else [], "AllowTeaming": adapter.allow_teaming,
        "MacAddressSpoofing": "Off", "DhcpGuard": "Off", "RouterGuard": "Off", "IeeePriorityTag": "Off",
        "DeviceNaming": "Off", "FixSpeed10G": "Off", "PortMirroringMode": "None", "IsLegacy": False,
        "IsSynthetic": True, "IsManagementOs": False, "IsExternalAdapter": False, "VMQWeight": 100,
        "ClusterMonitored": True, "ComputerName": host.name, "IsDeleted": False, "MediaType": 0,
        "TestReplicaSwitchName": adapter.test_replica_switch or None,
    }


def internal_adapter_values(host: Host) -> dict[str, Any]:
    return {"Name": "vSwitch-LAN", "SwitchName": "vSwitch-LAN", "IsManagementOs": True, "AllowTeaming": "Off",
            "SwitchId": uuid.uuid5(SWITCH_NS, "vSwitch-LAN"), "MacAddress": "00155D00FF01",
            "ComputerName": host.name, "Status": ["Ok"], "StatusDescription": ["OK"], "IsDeleted": False}


def memory_values(host: Host, vm: VM) -> dict[str, Any]:
    m = vm.memory
    return {"VMName": vm.name, "VMId": vm.id, "DynamicMemoryEnabled": m.dynamic, "Startup": m.startup,
            "Minimum": m.minimum, "Maximum": m.maximum, "Buffer": m.buffer, "Priority": m.priority,
            "MaximumPerNumaNode": 128 * 1024 * 1024 * 1024, "ResourcePoolName": "Primordial", "Name": "Memory",
            "Id": f"Microsoft:{vm.id}\\{MEMORY_SETTING_ID}", "ComputerName": host.name, "IsDeleted": False}


def snapshot_values(host: Host, vm: VM, cp: Checkpoint) -> dict[str, Any]:
    parent = next((c for c in vm.checkpoints if c.id == cp.parent_id), None)
    return {"Name": cp.name, "Id": cp.id, "VMName": vm.name, "VMId": vm.id, "SnapshotType": cp.type,
            "CreationTime": cp.creation_time, "ParentSnapshotName": parent.name if parent else None,
            "ParentSnapshotId": parent.id if parent else None, "IsAutomaticCheckpoint": False, "State": "Off",
            "Path": HV_PATH, "Notes": "", "Generation": vm.generation, "Version": vm.version,
            "MemoryStartup": vm.memory.startup, "MemoryMinimum": vm.memory.minimum,
            "MemoryMaximum": vm.memory.maximum, "DynamicMemoryEnabled": vm.memory.dynamic,
            "ProcessorCount": vm.cpu_count, "ComputerName": host.name, "IsDeleted": False,
            "NetworkAdapters": [adapter_text(vm, a) for a in vm.adapters], "HardDrives": disk_texts(vm)}


def replication_values(host: Host, vm: VM, rep: Replication | None = None) -> dict[str, Any]:
    rep = rep or vm.replication
    assert rep is not None
    test_vm = host.vm_by_id(rep.test_vm_id) if rep.test_vm_id else None
    return {
        "VMName": vm.name, "VMId": vm.id, "ReplicationState": rep.state, "ReplicationHealth": rep.health,
        "ReplicationMode": rep.mode, "ReplicationRelationshipType": rep.relationship_type,
        "ReplicationFrequencySec": rep.frequency_sec, "PrimaryServerName": rep.primary_server,
        "ReplicaServerName": rep.replica_server, "CurrentReplicaServerName": rep.replica_server,
        "ReplicaServerPort": rep.replica_port, "AuthenticationType": rep.auth_type,
        "LastReplicationTime": rep.last_replication_time, "LastAppliedLogTime": rep.last_applied_log_time,
        "RecoveryHistory": rep.recovery_history, "VSSSnapshotFrequencyHour": rep.vss_frequency_hour,
        "VSSSnapshotReplicationEnabled": rep.vss_frequency_hour > 0, "CompressionEnabled": rep.compression,
        "AutoResynchronizeEnabled": False, "AutoResynchronizeIntervalStart": timedelta(hours=18, minutes=30),
        "AutoResynchronizeIntervalEnd": timedelta(hours=6), "ReplicateHostKvpItems": True,
        "TestVirtualMachine": vm_text(test_vm) if test_vm else None, "ComputerName": host.name,
        "IsDeleted": False, "BypassProxyServer": False, "EnableWriteOrderPreservationAcrossDisks": False,
        "ReplicatedDisks": disk_texts(vm), "ExcludedDisks": [],
    }


def health_values(host: Host, vm: VM, now: datetime, rep: Replication | None = None) -> dict[str, Any]:
    rep = rep or vm.replication
    assert rep is not None
    values = replication_values(host, vm, rep)
    values.update({
        "MonitoringStartTime": rep.monitoring_start, "MonitoringEndTime": now,
        "AverageReplicationSize": rep.average_size, "MaximumReplicationSize": rep.maximum_size,
        "AverageReplicationLatency": rep.average_latency, "MaximumReplicationLatency": rep.average_latency,
        "ReplicationErrors": rep.errors, "SuccessfulReplicationCount": rep.successful_count,
        "MissedReplicationCount": rep.missed_count,
        "PendingReplicationSize": rep.pending_size if rep.mode == "Primary" or rep.relationship_type == "Extended"
        else 0,
        "InitialReplicationSize": 0, "LastReplicationType": "Regular" if rep.last_replication_time else "None",
        "FailedOverReplicationType": "None", "LastTestFailoverInitiatedTime": rep.last_test_failover_time,
        "ReplicationHealthDetails": list(rep.health_details), "CurrentTask": list(rep.current_tasks),
    })
    return values


def replication_server_values(host: Host) -> dict[str, Any]:
    """Get-VMReplicationServer (hyperv.md §2.7); monitoring defaults from §7 (12 h from 09:00)."""
    return {"ReplicationEnabled": host.replica_server_enabled, "AllowedAuthenticationType": "Kerberos",
            "ReplicationAllowedFromAnyServer": True, "KerberosAuthenticationPort": 80,
            "CertificateAuthenticationPort": 443, "DefaultStorageLocation": "D:\\Hyper-V Replica",
            "MonitoringInterval": host.monitoring_interval, "MonitoringStartTime": timedelta(hours=9),
            "OperationalStatus": ["Ok"], "StatusDescriptions": ["OK"], "ComputerName": host.name,
            "IsDeleted": False}


INTEGRATION_ID = uuid.UUID("2f1e9ea5-6c3b-4f57-8bb8-11b0c2a1d3c4")


def integration_values(host: Host, vm: VM, service: str, now: datetime) -> dict[str, Any]:
    """Get-VMIntegrationService: one integration component of a VM (every one enabled but Shutdown may not be)."""
    if service == "Shutdown":
        status = vm.shutdown_status(now)
        enabled = vm.shutdown_service
    else:
        status = vm.guest_status(now)
        enabled = True
    text = {None: "", "Ok": "OK", "Disabled": "Disabled", "LostCommunication": "Lost Communication",
            "NoContact": "No Contact"}[status]
    return {"Name": service, "VMName": vm.name, "VMId": vm.id, "Enabled": enabled,
            "Id": f"Microsoft:{vm.id}\\{uuid.uuid5(INTEGRATION_ID, service)}",
            "OperationalStatus": [status] if status else [], "PrimaryOperationalStatus": status,
            "PrimaryStatusDescription": text, "StatusDescription": [text] if text else [],
            "ComputerName": host.name, "IsDeleted": False}


def host_values(host: Host) -> dict[str, Any]:
    return {"Name": host.name, "ComputerName": host.name, "FullyQualifiedDomainName": host.fqdn,
            "LogicalProcessorCount": host.logical_processors, "MemoryCapacity": host.memory_capacity,
            "VirtualMachinePath": HV_PATH, "VirtualHardDiskPath": "C:\\ProgramData\\Microsoft\\Windows\\Virtual "
            "Hard Disks", "MacAddressMinimum": "00155D000000", "MacAddressMaximum": "00155DFFFFFF",
            "NumaSpanningEnabled": True, "IsDeleted": False, "MaximumStorageMigrations": 2,
            "MaximumVirtualMachineMigrations": 2, "ResourceMeteringSaveInterval": timedelta(hours=1)}


def live_values(live: Live, now: datetime) -> dict[str, Any]:
    """The property values of a live object (call with the fleet lock held: they snapshot the model), with its
    DateTimes in the host's local time, as Hyper-V returns them."""
    zone = HostZone(live.host.utc_offset_minutes)
    return {k: v.astimezone(zone) if isinstance(v, datetime) else v for k, v in _values(live, now).items()}


def _values(live: Live, now: datetime) -> dict[str, Any]:
    host, vm = live.host, live.vm
    kind = live.ps_kind
    if kind == "VirtualMachine" and vm:
        return vm_values(host, vm, now)
    if kind == "VMNetworkAdapter" and vm:
        return adapter_values(host, vm, live.item)
    if kind == "VMInternalNetworkAdapter":
        return internal_adapter_values(host)
    if kind == "VMMemory" and vm:
        return memory_values(host, vm)
    if kind == "VMSnapshot" and vm:
        return snapshot_values(host, vm, live.item)
    if kind == "VMReplication" and vm:
        return replication_values(host, vm, live.item)
    if kind == "VMReplicationHealth" and vm:
        return health_values(host, vm, now, live.item)
    if kind == "VMReplicationServer":
        return replication_server_values(host)
    if kind == "VMIntegrationComponent" and vm:
        return integration_values(host, vm, live.item, now)
    if kind == "VMHost":
        return host_values(host)
    raise ValueError(f"cannot serialize {kind}")


def to_output(live: Live, now: datetime) -> HyperVOutput:
    """What a pipeline writes: values snapshotted now, CLIXML rendered later by the fast path (lab.clixml)."""
    return HyperVOutput(live.ps_kind, live_values(live, now), to_string(live))


def to_psobject(live: Live, now: datetime) -> PSObject:
    """The same object built as a psrpcore PSObject (the reference the fast path is tested against)."""
    return build(live.ps_kind, live_values(live, now), to_string(live))
