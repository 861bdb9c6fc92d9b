"""The command registry: every entry checked against the official Hyper-V cmdlet syntax."""

from __future__ import annotations

import json

import pytest

from jobs.hyperv.commands import (
    REGISTRY,
    CmdletSpec,
    CommandNotAllowed,
    Param,
    _f,
    check_against_reference,
    command,
    pipeline,
    sent_parameters,
)
from tests.support.paths import ROOT
from tests.support.paths import SHARED as SHARED_DIR

SHARED = SHARED_DIR / "reference" / "hyperv-cmdlets.json"
LOCAL = ROOT / "lab" / "data" / "hyperv-cmdlets.json"
# Core cmdlets (Select-Object) are not in the Hyper-V reference: our own transcription of their syntax.
CORE = ROOT / "lab" / "data" / "core-cmdlets.json"


def _problems(path: Path, module: str = "Hyper-V") -> list[str]:
    reference = json.loads(path.read_text(encoding="utf-8"))["cmdlets"]
    return [p for spec in REGISTRY.values() if spec.module == module for p in check_against_reference(spec, reference)]


def test_registry_core_cmdlets_match_their_syntax_record() -> None:
    modules = {spec.module for spec in REGISTRY.values()}
    assert modules == {"Hyper-V", "Microsoft.PowerShell.Utility"}
    assert _problems(CORE, "Microsoft.PowerShell.Utility") == []
    assert [s.name for s in REGISTRY.values() if not s.jea] == ["Select-Object"]


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.exists(), reason=f"shared reference {SHARED} is absent (outside the project)")
def test_registry_matches_shared_reference() -> None:
    assert _problems(SHARED) == []


def test_registry_matches_project_copy() -> None:
    assert _problems(LOCAL) == []


def test_checker_rejects_bad_entries() -> None:
    reference = json.loads(LOCAL.read_text(encoding="utf-8"))["cmdlets"]
    bogus = CmdletSpec("Get-VMBogus", False, {}, ())
    missing_param = CmdletSpec("Get-VM", False, {"Nope": Param("Nope")}, (_f(optional=["Nope"]),))
    # Get-VMMemory without -VMName leaves the VMName set's mandatory parameter out.
    no_mandatory = CmdletSpec("Get-VMMemory", False, {}, (_f(),))
    # -Name and -Id live in different parameter sets of Get-VM.
    mixed_sets = CmdletSpec("Get-VM", False, {"Name": Param("Name"), "Id": Param("Id")},
                            (_f(required=["Name", "Id"]),))
    bad_values = CmdletSpec("Get-VMSnapshot", False, {"VMName": Param("VMName"),
                            "SnapshotType": Param("SnapshotType", accepted=("Weekly",))},
                            (_f(required=["VMName"], optional=["SnapshotType"]),))
    for spec in (bogus, missing_param, no_mandatory, mixed_sets, bad_values):
        assert check_against_reference(spec, reference), spec.name


def test_only_registered_cmdlets_and_parameters() -> None:
    with pytest.raises(CommandNotAllowed):
        command("Remove-VM", Name="x")
    with pytest.raises(CommandNotAllowed):
        command("Get-VM", ComputerName="other-host")
    with pytest.raises(CommandNotAllowed):
        command("Get-VMMemory")  # -VMName is required when not piped
    with pytest.raises(CommandNotAllowed):
        command("Get-VMSnapshot", VMName="a", SnapshotType="Weekly")
    with pytest.raises(CommandNotAllowed, match="-VMName takes one String, but a list is sent"):
        command("Set-VMNetworkAdapter", VMName=["fw01"], AllowTeaming="On")  # a real host refuses the list
    with pytest.raises(CommandNotAllowed):
        pipeline()


def test_error_action_and_confirm_added_from_registry() -> None:
    ro = command("Get-VM", Name=["a"])
    assert sent_parameters(ro) == (("Name", ["a"]), ("ErrorAction", "Stop"))
    registry = {"Stop-VM": CmdletSpec("Stop-VM", True, {"Name": Param("Name"), "Force": Param("Force", "switch")},
                                      (_f(required=["Name"], optional=["Force"]),))}
    rw = command("Stop-VM", registry=registry, Name=["a"], Force=True)
    assert sent_parameters(rw) == (("Name", ["a"]), ("Force", None), ("ErrorAction", "Stop"), ("Confirm", False))
    assert rw.render() == "Stop-VM -Name 'a' -Force"


def test_render_quotes_values_literally() -> None:
    p = pipeline(command("Get-VM", Name=["x'; Remove-VM *; '"]), command("Get-VMNetworkAdapter", piped=True))
    assert p.render() == "Get-VM -Name 'x''; Remove-VM *; ''' | Get-VMNetworkAdapter"
