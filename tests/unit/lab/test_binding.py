"""Parameter binding against the cmdlet reference: valid calls bind to the expected set and values,
invalid ones fail with PowerShell's wording and FullyQualifiedErrorId."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from lab.binding import Binder, BindingError

GUID = "6f1c2a47-8a51-4f59-9b8e-2f3c1d7e9a10"

VALID: list[tuple[str, list[tuple[str | None, Any]], str | None, str, dict[str, Any]]] = [
    ("Get-VM", [], None, "Name", {}),
    ("Get-VM", [(None, "web01")], None, "Name", {"Name": ["web01"]}),
    ("Get-VM", [("VMName", "x")], None, "Name", {"Name": ["x"]}),  # alias
    ("Get-VM", [("na", ["a", "b"])], None, "Name", {"Name": ["a", "b"]}),  # prefix
    ("Get-VM", [("ID", GUID)], None, "Id", {"Id": uuid.UUID(GUID)}),  # case-insensitive, Guid
    ("Get-VM", [("ea", "stop")], None, "Name", {"ErrorAction": "Stop"}),  # common alias + enum canonical
    ("Get-VM", [("ErrorAction", "SilentlyContinue"), ("Verbose", None)], None, "Name",
     {"ErrorAction": "SilentlyContinue", "Verbose": True}),
    ("Get-VMNetworkAdapter", [("All", None)], None, "All", {"All": True}),
    ("Get-VMNetworkAdapter", [("ManagementOS", None), ("SwitchName", "vSwitch-LAN")], None, "ManagementOS",
     {"ManagementOS": True, "SwitchName": "vSwitch-LAN"}),
    ("Get-VMNetworkAdapter", [(None, "fw01"), (None, "LAN")], None, "VMName", {"VMName": ["fw01"], "Name": "LAN"}),
    ("Get-VMNetworkAdapter", [], "VirtualMachine", "VMObject", {}),  # Get-VM | Get-VMNetworkAdapter
    ("Get-VMNetworkAdapter", [("VMNetworkAdapterName", "LAN")], "VirtualMachine", "VMObject", {"Name": "LAN"}),
    ("Get-VMSnapshot", [("VMName", "fw01"), ("SnapshotType", "replica")], None, "VMName",
     {"VMName": ["fw01"], "SnapshotType": "Replica"}),
    ("Get-VMSnapshot", [("VMName", "x"), ("VMRecoveryCheckpoint", "AppConsistentReplica")], None, "VMName",
     {"VMName": ["x"], "SnapshotType": "AppConsistentReplica"}),
    ("Get-VMReplication", [], None, "VMName", {}),
    ("Get-VMReplication", [("State", "replicating"), ("Health", "critical")], None, "VMName",
     {"ReplicationState": "Replicating", "ReplicationHealth": "Critical"}),
    ("Measure-VMReplication", [("Mode", "Primary"), ("Relationship", "Simple")], None, "VMName",
     {"ReplicationMode": "Primary", "ReplicationRelationshipType": "Simple"}),
    ("Start-VMFailover", [("VMName", "fw01"), ("Prepare", None), ("Confirm", False)], None, "VMName",
     {"VMName": ["fw01"], "Prepare": True, "Confirm": False}),
    ("Start-VMFailover", [("VMName", "fw01"), ("AsTest", None)], None, "VMName_Test",
     {"VMName": ["fw01"], "AsTest": True}),
    ("Start-VMFailover", [(None, "fw01")], None, "VMName", {"VMName": ["fw01"]}),
    ("Set-VMReplication", [("VMName", "x"), ("Reverse", None), ("ReplicaServer", "hv-a1.lab.local")], None,
     "VMName", {"VMName": ["x"], "Reverse": True, "ReplicaServerName": "hv-a1.lab.local"}),
    ("Set-VMReplication", [(None, "x"), (None, "hv-b1"), (None, "8080")], None, "VMName",
     {"VMName": ["x"], "ReplicaServerName": "hv-b1", "ReplicaServerPort": 8080}),
    ("Set-VMReplication", [("VMName", "x"), ("RecHist", "4"), ("AutoResyncStart", "18:30:00"),
                           ("IRTime", "2025-01-02T03:04:05")], None, "VMName",
     {"VMName": ["x"], "RecoveryHistory": 4, "AutoResynchronizeIntervalStart": timedelta(hours=18, minutes=30),
      "InitialReplicationStartTime": datetime(2025, 1, 2, 3, 4, 5)}),
    ("Set-VMNetworkAdapter", [("VMName", "fw01"), ("AllowTeaming", "on")], None, "VMName",
     {"VMName": "fw01", "AllowTeaming": "On"}),
    ("Resume-VMReplication", [("VMName", "x"), ("Resync", None)], None, "VMName",
     {"VMName": ["x"], "Resynchronize": True}),
    ("Stop-VM", [("Name", "x"), ("Force", None), ("cf", False)], None, "Name",
     {"Name": ["x"], "Force": True, "Confirm": False}),
    ("Checkpoint-VM", [("Name", "x"), ("CheckpointName", "cp")], None, "Name", {"Name": ["x"], "SnapshotName": "cp"}),
    ("Get-VMHost", [], None, "ComputerName", {}),
]

NAMED_NOT_FOUND = "A parameter cannot be found that matches parameter name '{}'."
AMBIGUOUS_SET = "Parameter set cannot be resolved using the specified named parameters."

INVALID: list[tuple[str, list[tuple[str | None, Any]], str, str]] = [
    ("Get-VM", [("Foo", 1)], NAMED_NOT_FOUND.format("Foo"), "NamedParameterNotFound"),
    ("Get-VM", [("Confirm", False)], NAMED_NOT_FOUND.format("Confirm"), "NamedParameterNotFound"),  # no ShouldProcess
    ("Get-VM", [("Name", "a"), ("Id", GUID)], AMBIGUOUS_SET, "AmbiguousParameterSet"),
    ("Get-VMNetworkAdapter", [("All", None), ("ManagementOS", None)], AMBIGUOUS_SET, "AmbiguousParameterSet"),
    ("Start-VMFailover", [("VMName", "x"), ("Prepare", None), ("AsTest", None)], AMBIGUOUS_SET,
     "AmbiguousParameterSet"),
    ("Get-VMNetworkAdapter", [],
     "Cannot process command because of one or more missing mandatory parameters: VMName.",
     "MissingMandatoryParameter"),
    ("Get-VMSnapshot", [("Name", "cp")],
     "Cannot process command because of one or more missing mandatory parameters: VMName.",
     "MissingMandatoryParameter"),
    ("Get-VMReplication", [("State", "Bogus")],
     "Cannot validate argument on parameter 'ReplicationState'. The argument \"Bogus\" does not belong to the set",
     "ParameterArgumentValidationError"),
    ("Set-VMNetworkAdapter", [("VMName", "x"), ("AllowTeaming", "Maybe")],
     "Cannot validate argument on parameter 'AllowTeaming'. The argument \"Maybe\" does not belong to the set "
     "\"On,Off\" specified by the ValidateSet attribute.", "ParameterArgumentValidationError"),
    ("Get-VM", [("Id", "nope")], "Cannot bind parameter 'Id'. Cannot convert value \"nope\" to type \"System.Guid\".",
     "CannotConvertArgumentNoMessage"),
    ("Set-VMReplication", [("VMName", "x"), ("RecoveryHistory", "abc")],
     "Cannot bind parameter 'RecoveryHistory'. Cannot convert value \"abc\" to type \"System.Int32\". "
     "Error: \"Input string was not in a correct format.\"", "CannotConvertArgumentNoMessage"),
    ("Set-VMReplication", [("VMName", "x"), ("CompressionEnabled", "yes")],
     "Cannot process argument transformation on parameter 'CompressionEnabled'. Cannot convert value "
     "\"System.String\" to type \"System.Boolean\".", "ParameterArgumentTransformationError"),
    ("Get-VM", [(None, "a"), (None, "b")], "A positional parameter cannot be found that accepts argument 'b'.",
     "PositionalParameterNotFound"),
    ("Get-VM", [("V", "a")], "Parameter cannot be processed because the parameter name 'V' is ambiguous.",
     "AmbiguousParameter"),
    ("Get-VM", [("Name", "a"), ("VMName", "b")], "Cannot bind parameter because parameter 'Name' is specified more "
     "than once.", "ParameterAlreadyBound"),
    ("Get-VM", [("ErrorAction", "Explode")], "Cannot validate argument on parameter 'ErrorAction'.",
     "ParameterArgumentValidationError"),
    ("Start-VMFailover", [("VMRecoverySnapshot", "latest")],
     "Cannot bind parameter 'VMRecoverySnapshot'. Cannot convert the \"latest\" value of type \"System.String\" to "
     "type \"Microsoft.HyperV.PowerShell.VMSnapshot\".", "CannotConvertArgument"),
    ("Get-VM", [("Name", None)], "Missing an argument for parameter 'Name'. Specify a parameter of type "
     "'System.String[]' and try again.", "MissingArgument"),
]


@pytest.mark.parametrize("cmdlet,params,pipe,expected_set,expected", VALID)
def test_valid_calls_bind(cmdlet: str, params: list, pipe: str | None, expected_set: str,
                          expected: dict[str, Any]) -> None:
    bound = Binder(cmdlet).bind(params, pipe)
    assert bound.parameter_set == expected_set
    assert bound.params == expected


@pytest.mark.parametrize("cmdlet,params,message,error_id", INVALID)
def test_invalid_calls_fail_like_powershell(cmdlet: str, params: list, message: str, error_id: str) -> None:
    with pytest.raises(BindingError) as info:
        Binder(cmdlet).bind(params)
    assert info.value.message.startswith(message)
    assert info.value.fq_error_id == f"{error_id},Microsoft.HyperV.PowerShell.Commands.{cmdlet.replace('-', '')}Command"
    assert info.value.category == "InvalidArgument"


def test_table_size() -> None:
    assert len(VALID) + len(INVALID) >= 30


def test_pipeline_input_binds_vm_by_value() -> None:
    bound = Binder("Get-VMNetworkAdapter").bind([], "VirtualMachine")
    assert bound.pipeline_param == "VM"
    assert Binder("Get-VMMemory").bind([], "VirtualMachine").pipeline_param == "VM"
    assert Binder("Get-VMHost").bind([], "VirtualMachine").pipeline_param is None
