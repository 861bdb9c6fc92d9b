"""Parameter binding through the real pypsrp client: the lab refuses what a real host's binder refuses.

A list sent to a scalar parameter is PowerShell's terminating ``CannotConvertArgument`` (powershell-binding.md
§1, §10), whatever -ErrorAction says; a scalar sent to an array parameter is wrapped (§2); a bad enum name lists
the valid names (§3). The bot's own Get-VMSnapshot query (``jobs.backup.export.snapshot_query``) binds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from pypsrp.powershell import PowerShell, PSInvocationState, RunspacePool

from jobs.backup.export import owner_host, snapshot_query
from jobs.hyperv.commands import Command, Pipeline
from jobs.hyperv.errors import PowerShellError
from jobs.hyperv.fleet import Fleet
from jobs.hyperv.hosts import load_inventory
from jobs.hyperv.records import as_str, prop
from jobs.hyperv.settings import JobSettings
from lab.fleet import Lab
from tests.support.fixtures_lab import lab_wsman

VM, CHECKPOINT = "web01", "baseline"
LIST_TO_STRING = ("Cannot convert 'System.Object[]' to the type 'System.String' required by parameter 'Name'. "
                  "Specified method is not supported.")
GET_SNAPSHOT_CLASS = "Microsoft.HyperV.PowerShell.Commands.GetVMSnapshotCommand"


@pytest.fixture
def fleet_on(lab: Lab, tmp_path: Path) -> Iterator[Fleet]:
    inventory = load_inventory(lab.write_inventory(tmp_path / "inventory.yml"))
    with Fleet(inventory, JobSettings(deadline_s=10)) as fleet:
        yield fleet


def _invoke(lab: Lab, host: str, build: Callable[[PowerShell], Any]) -> PowerShell:
    with RunspacePool(lab_wsman(lab, host)) as pool:
        ps = PowerShell(pool)
        build(ps)
        ps.invoke()
        return ps


def test_a_list_to_a_scalar_parameter_fails_the_pipeline_as_on_a_real_host(lab: Lab, fleet_on: Fleet) -> None:
    host = owner_host(fleet_on, VM)
    ps = _invoke(lab, host, lambda p: p.add_cmdlet("Get-VMSnapshot").add_parameter("VMName", VM)
                 .add_parameter("Name", [CHECKPOINT]).add_parameter("ErrorAction", "SilentlyContinue"))
    # A binding error ends the pipeline Failed even under -ErrorAction SilentlyContinue (§10).
    assert ps.state == PSInvocationState.FAILED and ps.had_errors and ps.output == []
    error = ps.streams.error[-1]
    assert str(error) == LIST_TO_STRING
    assert error.fq_error == f"CannotConvertArgument,{GET_SNAPSHOT_CLASS}"


def test_the_old_export_query_is_refused_and_the_fixed_one_binds(lab: Lab, fleet_on: Fleet) -> None:
    host = owner_host(fleet_on, VM)
    session = fleet_on.session(host)
    old = Pipeline((Command("Get-VMSnapshot", (("VMName", [VM]), ("Name", [CHECKPOINT]))),))  # before the fix
    with pytest.raises(PowerShellError) as info:
        session.run(old)
    assert info.value.fq_error_id == f"CannotConvertArgument,{GET_SNAPSHOT_CLASS}"
    assert info.value.category == "InvalidArgument" and LIST_TO_STRING in str(info.value)
    found = session.run(snapshot_query(VM, CHECKPOINT))
    assert [as_str(prop(o, "Name")) for o in found] == [CHECKPOINT]


def test_a_scalar_to_an_array_parameter_is_wrapped(lab: Lab, fleet_on: Fleet) -> None:
    host = owner_host(fleet_on, VM)
    ps = _invoke(lab, host, lambda p: p.add_cmdlet("Get-VM").add_parameter("Name", VM))
    assert ps.state == PSInvocationState.COMPLETED and not ps.had_errors
    assert len(ps.output) == 1 and VM in str(ps.output[0])


def test_a_bad_enum_name_lists_the_valid_names(lab: Lab, fleet_on: Fleet) -> None:
    host = owner_host(fleet_on, VM)
    ps = _invoke(lab, host, lambda p: p.add_cmdlet("Get-VMSnapshot").add_parameter("VMName", VM)
                 .add_parameter("SnapshotType", "Weekly"))
    assert ps.state == PSInvocationState.FAILED
    error = ps.streams.error[-1]
    assert error.fq_error == f"CannotConvertArgumentNoMessage,{GET_SNAPSHOT_CLASS}"
    assert str(error).startswith(
        "Cannot bind parameter 'SnapshotType'. Cannot convert value \"Weekly\" to type "
        "\"Microsoft.HyperV.PowerShell.SnapshotType\". Error: \"Unable to match the identifier name Weekly to a valid "
        "enumerator name. Specify one of the following enumerator names and try again:")
    assert str(error).endswith("Standard, Recovery, Planned, Missing, Replica, AppConsistentReplica, SyncedReplica\"")
