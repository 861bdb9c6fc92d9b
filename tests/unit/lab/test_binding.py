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
    ("Get-VM", [("Name", None)], None, "Name", {"Name": None}),  # <Nil/> binds $null (§0)
    ("Get-VM", [("V", "a")], None, "Name", {"Name": ["a"]}),  # a lone cmdlet parameter beats -Verbose (§5)
    ("Get-VMSnapshot", [("VMName", "x"), ("SnapshotType", 6)], None, "VMName",
     {"VMName": ["x"], "SnapshotType": "Replica"}),  # an enum by value (§3)
    ("Get-VMSnapshot", [("VMName", "x"), ("SnapshotType", "6")], None, "VMName",
     {"VMName": ["x"], "SnapshotType": "Replica"}),  # digits parse as a value (§3)
    ("Get-VMReplication", [("State", "repl")], None, "VMName", {"ReplicationState": "Replicating"}),  # prefix
    ("Get-VMSnapshot", [("VMName", "x"), ("SnapshotType", ["Replica"])], None, "VMName",
     {"VMName": ["x"], "SnapshotType": "Replica"}),  # a list to an enum is joined "A,B" (§1)
    ("Stop-VM", [("Name", "x"), ("Force", 1)], None, "Name", {"Name": ["x"], "Force": True}),  # numbers (§4)
    ("Set-VMReplication", [("VMName", "x"), ("CompressionEnabled", 0)], None, "VMName",
     {"VMName": ["x"], "CompressionEnabled": False}),
    ("Set-VMReplication", [("VMName", "x"), ("RecHist", "1.5")], None, "VMName",
     {"VMName": ["x"], "RecoveryHistory": 2}),  # through double (§3)
    ("Select-Object", [("Property", ["Name", ["State"]])], "VirtualMachine", "DefaultParameter",
     {"Property": ["Name", ["State"]]}),  # Object[]: a nested list is one object
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
     "Cannot bind parameter 'ReplicationState'. Cannot convert value \"Bogus\" to type "
     "\"Microsoft.HyperV.PowerShell.VMReplicationState\". Error: \"Unable to match the identifier name Bogus to a "
     "valid enumerator name. Specify one of the following enumerator names and try again:\r\nDisabled, "
     "ReadyForInitialReplication, InitialReplicationInProgress, WaitingForInitialReplication, Replicating,",
     "CannotConvertArgumentNoMessage"),
    ("Set-VMNetworkAdapter", [("VMName", "x"), ("AllowTeaming", "Maybe")],
     "Cannot bind parameter 'AllowTeaming'. Cannot convert value \"Maybe\" to type "
     "\"Microsoft.HyperV.PowerShell.OnOffState\". Error: \"Unable to match the identifier name Maybe to a valid "
     "enumerator name. Specify one of the following enumerator names and try again:\r\nOn, Off\"",
     "CannotConvertArgumentNoMessage"),
    ("Get-VMSnapshot", [("VMName", "x"), ("SnapshotType", 3)],
     "Cannot bind parameter 'SnapshotType'. Cannot convert value \"3\" to type "
     "\"Microsoft.HyperV.PowerShell.SnapshotType\" due to enumeration values that are not valid. Specify one of "
     "the following enumeration values and try again. The possible enumeration values are \"Standard,Recovery,"
     "Planned,Missing,Replica,AppConsistentReplica,SyncedReplica\".", "CannotConvertArgumentNoMessage"),
    ("Get-VMReplication", [("State", "Re")], "Cannot bind parameter 'ReplicationState'. Cannot convert value \"Re\" "
     "to type \"Microsoft.HyperV.PowerShell.VMReplicationState\". Error: \"The identifier name Re cannot be "
     "processed", "CannotConvertArgumentNoMessage"),
    # A collection to a scalar parameter, even of one element (§1): the bot's old Get-VMSnapshot call.
    ("Get-VMSnapshot", [("VMName", ["fw01"]), ("Name", ["before-upgrade"])],
     "Cannot convert 'System.Object[]' to the type 'System.String' required by parameter 'Name'. Specified method "
     "is not supported.", "CannotConvertArgument"),
    ("Set-VMNetworkAdapter", [("VMName", ["x"]), ("AllowTeaming", "On")],
     "Cannot convert 'System.Object[]' to the type 'System.String' required by parameter 'VMName'. Specified "
     "method is not supported.", "CannotConvertArgument"),
    ("Get-VM", [("Id", [GUID])], "Cannot convert 'System.Object[]' to the type 'System.Guid' required by parameter "
     "'Id'. Specified method is not supported.", "CannotConvertArgument"),
    ("Get-VM", [("Name", [["a"]])], "Cannot convert 'System.Object[]' to the type 'System.String' required by "
     "parameter 'Name'.", "CannotConvertArgument"),  # a nested list in an array (§2)
    ("Stop-VM", [("Name", "x"), ("Force", "true")], "Cannot convert 'System.String' to the type "
     "'System.Management.Automation.SwitchParameter' required by parameter 'Force'. ", "CannotConvertArgument"),
    # The named-parameter-not-found error comes last: another parameter's conversion error wins (§5).
    ("Get-VM", [("Foo", 1), ("Id", "nope")], "Cannot bind parameter 'Id'.", "CannotConvertArgumentNoMessage"),
    ("Get-VM", [("C", "x")], "Parameter cannot be processed because the parameter name 'C' is ambiguous. Possible "
     "matches include: -", "AmbiguousParameter"),
    ("Get-VM", [("Id", "nope")], "Cannot bind parameter 'Id'. Cannot convert value \"nope\" to type \"System.Guid\".",
     "CannotConvertArgumentNoMessage"),
    ("Set-VMReplication", [("VMName", "x"), ("RecoveryHistory", "abc")],
     "Cannot bind parameter 'RecoveryHistory'. Cannot convert value \"abc\" to type \"System.Int32\". "
     "Error: \"Input string was not in a correct format.\"", "CannotConvertArgumentNoMessage"),
    ("Set-VMReplication", [("VMName", "x"), ("CompressionEnabled", "yes")],
     "Cannot convert 'System.String' to the type 'System.Boolean' required by parameter 'CompressionEnabled'. ",
     "CannotConvertArgument"),
    ("Set-VMReplication", [("VMName", "x"), ("CompressionEnabled", None)],
     "Cannot bind argument to parameter 'CompressionEnabled' because it is null.",
     "ParameterArgumentValidationErrorNullNotAllowed"),
    ("Get-VM", [(None, "a"), (None, "b")], "A positional parameter cannot be found that accepts argument 'b'.",
     "PositionalParameterNotFound"),
    ("Get-VM", [("Name", "a"), ("VMName", "b")], "Cannot bind parameter because parameter 'Name' is specified more "
     "than once.", "ParameterAlreadyBound"),
    ("Get-VM", [("ErrorAction", "Explode")], "Cannot bind parameter 'ErrorAction'. Cannot convert value "
     "\"Explode\" to type \"System.Management.Automation.ActionPreference\". Error: \"Unable to match the "
     "identifier name Explode to a valid enumerator name.", "CannotConvertArgumentNoMessage"),
    ("Start-VMFailover", [("VMRecoverySnapshot", "latest")],
     "Cannot bind parameter 'VMRecoverySnapshot'. Cannot convert the \"latest\" value of type \"System.String\" to "
     "type \"Microsoft.HyperV.PowerShell.VMSnapshot\".", "CannotConvertArgument"),
    ("Get-VMSnapshot", [("VMName", [])], "Cannot bind argument to parameter 'VMName' because it is an empty array.",
     "ParameterArgumentValidationErrorEmptyArrayNotAllowed"),
    ("Export-VMSnapshot", [("VMName", ["x"]), ("Name", ["cp"]), ("Path", "")],
     "Cannot bind argument to parameter 'Path' because it is an empty string.",
     "ParameterArgumentValidationErrorEmptyStringNotAllowed"),
    ("Stop-VM", [("Name", None)], "Cannot bind argument to parameter 'Name' because it is null.",
     "ParameterArgumentValidationErrorNullNotAllowed"),
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
    # Validation of a mandatory parameter's value is InvalidData (§7); $null to a [bool] is InvalidArgument (§4).
    validation = error_id.startswith("ParameterArgumentValidationError") and cmdlet != "Set-VMReplication"
    assert info.value.category == ("InvalidData" if validation else "InvalidArgument")


def test_table_size() -> None:
    assert len(VALID) + len(INVALID) >= 30


def test_pipeline_input_binds_vm_by_value() -> None:
    bound = Binder("Get-VMNetworkAdapter").bind([], "VirtualMachine")
    assert bound.pipeline_param == "VM"
    assert Binder("Get-VMMemory").bind([], "VirtualMachine").pipeline_param == "VM"
    # No Get-VMHost parameter takes a VM by value; its -CimSession takes the VM's CimSession property by name (§8).
    host = Binder("Get-VMHost").bind([], "VirtualMachine")
    assert (host.pipeline_param, host.pipeline_property) == ("CimSession", "CimSession")


def test_pipeline_input_binds_by_property_name_when_no_parameter_takes_it_by_value() -> None:
    bound = Binder("Get-VMSnapshot").bind([], "VMSnapshot")  # Get-VMSnapshot -VMName x | Get-VMSnapshot
    assert (bound.parameter_set, bound.pipeline_param, bound.pipeline_property) == ("Id", "Id", "Id")
    by_value = Binder("Start-VMFailover").bind([("AsTest", None)], "VMSnapshot")
    assert (by_value.parameter_set, by_value.pipeline_param, by_value.pipeline_property) == (
        "VMSnapshot_Test", "VMRecoverySnapshot", None)


def test_collection_error_is_terminating_binding_error_with_powershell_fields() -> None:
    with pytest.raises(BindingError) as info:
        Binder("Get-VMSnapshot").bind([("VMName", ["fw01"]), ("Name", ["cp"])])
    assert info.value.exception_type == "System.Management.Automation.ParameterBindingException"
    assert info.value.fq_error_id == "CannotConvertArgument,Microsoft.HyperV.PowerShell.Commands.GetVMSnapshotCommand"
