"""Select-Object on the lab: Selected.* PSCustomObjects with note properties, JEA's restricted proxy, limits."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest
from psrpcore.types._serializer import serialize

from lab.cmdlets import HyperVEngine
from lab.hvobjects import Live
from lab.model import Fleet
from lab.select_object import SelectedOutput, chosen_properties
from tests.support.lab_io import cmd, run, wire

VM_TYPE = "Selected.Microsoft.HyperV.PowerShell.VirtualMachine"


def test_selected_vms_carry_only_the_chosen_properties(fleet: Fleet, a1: HyperVEngine) -> None:
    io = run(a1, cmd("Get-VM"), cmd("Select-Object", Property=["Id", "name", "State"], ErrorAction="Stop"))
    assert io.failed is None and not io.errors
    got = [wire(o) for o in io.out]
    assert [(o.Id, o.Name, str(o.State)) for o in got] == [
        (vm.id, vm.name, vm.state) for vm in fleet.hosts["hv-a1"].vms]
    first = got[0]
    assert first.PSObject.type_names == [f"Deserialized.{VM_TYPE}",
                                         "Deserialized.System.Management.Automation.PSCustomObject",
                                         "Deserialized.System.Object"]
    assert [p.name for p in first.PSObject.extended_properties] == ["Id", "Name", "State"]  # the class's spelling
    assert not first.PSObject.adapted_properties


def test_selected_adapters_keep_address_lists(fleet: Fleet, a1: HyperVEngine) -> None:
    io = run(a1, cmd("Get-VM"), cmd("Get-VMNetworkAdapter"),
             cmd("Select-Object", Property=["VMName", "IPAddresses", "MacAddress"]))
    host = fleet.hosts["hv-a1"]
    expected = [(vm.name, a.ipv4 + a.ipv6 if vm.state == "Running" else [], a.mac)
                for vm in host.vms for a in vm.adapters]
    assert [(o.VMName, list(o.IPAddresses), o.MacAddress) for o in map(wire, io.out)] == expected


def test_wildcards_expand_in_class_order_and_unknown_names_are_null(a1: HyperVEngine) -> None:
    (first, *_) = run(a1, cmd("Get-VM", Name=["fw01"]), cmd("Select-Object", Property=["*Name", "Nope"])).out
    names = [n for n, _ in first.props]
    assert names == ["ComputerName", "Name", "ParentSnapshotName", "Nope"]  # VirtualMachine's *Name properties
    assert wire(first).Nope is None
    assert chosen_properties("VirtualMachine", ["State", "state"]) == [("State", "Microsoft.HyperV.PowerShell.VMState")]


@pytest.mark.parametrize("patterns", [["Id", "Name", "State"], ["*"], ["IPAddresses", "Name", "Missing"]])
def test_fast_path_bytes_equal_psrpcore(fleet: Fleet, patterns: list[str]) -> None:
    host = fleet.hosts["hv-a1"]
    vm = host.vms[0]
    vm.name = "web_x01 & <co>"  # escaping: _xHHHH_ and XML
    lives = [Live("VirtualMachine", host, vm)] + [Live("VMNetworkAdapter", host, vm, a) for a in vm.adapters]
    a1 = HyperVEngine(fleet, "hv-a1")
    for live in lives:
        (out,) = run(a1, cmd("Select-Object", Property=patterns), input_objects=[live]).out
        assert isinstance(out, SelectedOutput)
        expected = ET.tostring(serialize(out.to_psobject(), None), encoding="utf-8", method="xml")
        assert out.to_clixml() == expected, (live.ps_kind, patterns)


def test_jea_proxy_refuses_properties_outside_its_set(fleet: Fleet, a1: HyperVEngine) -> None:
    fleet.hosts["hv-a1"].jea_configuration = "HvBot"
    io = run(a1, cmd("Get-VM"), cmd("Select-Object", Property=["Name", "State"]), configuration="HvBot")
    assert io.failed is not None and not io.out
    assert io.failed.FullyQualifiedErrorId == (
        "ParameterArgumentValidationError,Microsoft.PowerShell.Commands.SelectObjectCommand")
    assert io.failed.Exception.Message.startswith(
        "Cannot validate argument on parameter 'Property'. The argument \"State\" does not belong to the set "
        "\"ModuleName,Namespace,OutputType,Count,HelpUri,Name,")
    allowed = run(a1, cmd("Get-VM"), cmd("Select-Object", Property=["Name"]), configuration="HvBot")
    assert allowed.failed is None and len(allowed.out) == len(fleet.hosts["hv-a1"].vms)


def test_parameters_the_lab_does_not_simulate_are_refused_clearly(a1: HyperVEngine) -> None:
    io = run(a1, cmd("Get-VM"), cmd("Select-Object", Property=["Name"], First=1))
    assert io.failed is not None and not io.out
    assert "does not simulate -First" in io.failed.Exception.Message
    unknown = run(a1, cmd("Get-VM"), cmd("Select-Object", Bogus=1))
    assert unknown.failed is not None
    assert unknown.failed.Exception.Message == "A parameter cannot be found that matches parameter name 'Bogus'."
