"""HyperVEngine through an in-memory PipelineIO: served cmdlets return the model's data; errors as PowerShell."""

from __future__ import annotations

import threading

from lab.cmdlets import HyperVEngine
from lab.engine import CommandCall
from lab.model import Fleet
from tests.support.lab_io import cmd, run, wire


def test_get_vm_returns_every_vm_of_the_host(fleet: Fleet, a1: HyperVEngine) -> None:
    io = run(a1, cmd("Get-VM"))
    assert io.failed is None and not io.errors
    got = [wire(o) for o in io.out]
    assert [(o.Name, o.Id, str(o.State)) for o in got] == [(vm.name, vm.id, vm.state) for vm in fleet.hosts["hv-a1"].vms]


def test_get_vm_wildcards_and_id(fleet: Fleet, a1: HyperVEngine) -> None:
    names = [wire(o).Name for o in run(a1, cmd("Get-VM", Name=["web*", "FW01"])).out]
    webs = [vm.name for vm in fleet.hosts["hv-a1"].vms if vm.name.startswith("web")]  # web03 is a replica here
    assert names == webs + ["fw01"] and len(webs) == 2
    vm = fleet.vm("hv-a1", "sql01")
    assert [wire(o).Name for o in run(a1, cmd("Get-VM", Id=str(vm.id))).out] == ["sql01"]


def test_missing_vm_is_non_terminating(a1: HyperVEngine) -> None:
    io = run(a1, cmd("Get-VM", Name=["ghost", "fw01"]))
    assert io.failed is None and [wire(o).Name for o in io.out] == ["fw01"]
    (err,) = io.errors
    assert err.Exception.Message == 'Hyper-V was unable to find a virtual machine with name "ghost".'
    assert err.FullyQualifiedErrorId == "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVMCommand"
    assert err.CategoryInfo.Category.name == "InvalidArgument" and err.TargetObject == "ghost"


def test_error_action_stop_makes_it_terminating(a1: HyperVEngine) -> None:
    io = run(a1, cmd("Get-VM", Name=["ghost", "fw01"], ErrorAction="Stop"))
    assert io.failed is not None and not io.out and not io.errors
    assert io.failed.FullyQualifiedErrorId == "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVMCommand"
    quiet = run(a1, cmd("Get-VM", Name="ghost", ErrorAction="SilentlyContinue"))
    assert quiet.failed is None and not quiet.errors


def test_binding_error_is_terminating(a1: HyperVEngine) -> None:
    io = run(a1, cmd("Get-VM", Bogus=1))
    assert io.failed is not None and not io.out
    assert io.failed.FullyQualifiedErrorId == "NamedParameterNotFound,Microsoft.HyperV.PowerShell.Commands.GetVMCommand"
    assert io.failed.Exception.Message == "A parameter cannot be found that matches parameter name 'Bogus'."


def test_unknown_cmdlet(a1: HyperVEngine) -> None:
    io = run(a1, cmd("Remove-Everything"))
    assert io.failed.FullyQualifiedErrorId == "CommandNotFoundException"  # type: ignore[union-attr]
    assert io.failed.Exception.Message.startswith(  # type: ignore[union-attr]
        "The term 'Remove-Everything' is not recognized as the name of a cmdlet")
    assert io.failed.CategoryInfo.Category.name == "ObjectNotFound"  # type: ignore[union-attr]


def test_script_refused_unless_allowed_and_always_on_jea(fleet: Fleet, a1: HyperVEngine) -> None:
    script = CommandCall("Get-VM -Name fw01", is_script=True)
    io = run(a1, script)
    assert io.failed.FullyQualifiedErrorId == "ScriptsNotAllowed"  # type: ignore[union-attr]
    host = fleet.hosts["hv-a1"]
    host.allow_script = True
    assert [wire(o).Name for o in run(a1, script).out] == ["fw01"]
    host.jea_configuration = "HvBot"
    assert run(a1, script, configuration="HvBot").failed is not None


def test_pipeline_get_vm_into_adapters_ips_only_running(fleet: Fleet, a1: HyperVEngine) -> None:
    io = run(a1, cmd("Get-VM"), cmd("Get-VMNetworkAdapter"))
    got = [wire(o) for o in io.out]
    host = fleet.hosts["hv-a1"]
    expected = [(vm.name, a.name, a.mac, a.ipv4 + a.ipv6 if vm.state == "Running" else [], a.allow_teaming)
                for vm in host.vms for a in vm.adapters]
    assert [(o.VMName, o.Name, o.MacAddress, list(o.IPAddresses), str(o.AllowTeaming)) for o in got] == expected
    assert got[0].PSObject.type_names[0] == "Deserialized.Microsoft.HyperV.PowerShell.VMNetworkAdapter"


def test_adapters_all_and_management_os(a1: HyperVEngine) -> None:
    all_out = [wire(o) for o in run(a1, cmd("Get-VMNetworkAdapter", All=None)).out]
    assert all_out[-1].PSObject.type_names[0].endswith("VMInternalNetworkAdapter")
    mos = run(a1, cmd("Get-VMNetworkAdapter", ManagementOS=None)).out
    assert len(mos) == 1


def test_memory_snapshot_replication_measure_host(fleet: Fleet) -> None:
    b1 = HyperVEngine(fleet, "hv-b1")
    vm = fleet.vm("hv-b1", "fw01")
    mem = wire(run(b1, cmd("Get-VMMemory", VMName="fw01")).out[0])
    assert (mem.Startup, mem.DynamicMemoryEnabled) == (vm.memory.startup, vm.memory.dynamic)
    snaps = [wire(o) for o in run(b1, cmd("Get-VMSnapshot", VMName="fw01", SnapshotType="AppConsistentReplica")).out]
    assert [s.Id for s in snaps] == [c.id for c in vm.checkpoints if c.type == "AppConsistentReplica"]
    assert all(str(s.SnapshotType) == "AppConsistentReplica" and int(s.SnapshotType) == 7 for s in snaps)
    rep = wire(run(b1, cmd("Get-VMReplication", VMName="fw01")).out[0])
    assert (str(rep.ReplicationMode), rep.PrimaryServerName, rep.ReplicationFrequencySec) == \
        ("Replica", "hv-a1.lab.local", 30)
    healthy = run(b1, cmd("Measure-VMReplication", ReplicationHealth="Critical")).out
    assert healthy == []
    host = wire(run(b1, cmd("Get-VMHost")).out[0])
    assert (host.Name, host.FullyQualifiedDomainName) == ("hv-b1", "hv-b1.lab.local")


def test_replication_filters_and_not_replicated(fleet: Fleet, a1: HyperVEngine) -> None:
    fleet.apply_control("replication", {"host": "hv-a1", "vm": "web01", "health": "Warning"})
    out = [wire(o).VMName for o in run(a1, cmd("Get-VMReplication", Health="Warning")).out]
    assert out == ["web01"]
    io = run(a1, cmd("Get-VMReplication", VMName="app01"))
    assert not io.out and io.errors[0].FullyQualifiedErrorId.startswith("InvalidOperation,")


def test_story_unplanned_failover_through_cmdlets(fleet: Fleet) -> None:
    fleet.apply_control("power_loss", {"host": "hv-a1"})
    b1 = HyperVEngine(fleet, "hv-b1")
    points = run(b1, cmd("Get-VMSnapshot", VMName="fw01", SnapshotType="Replica"))
    io = run(b1, cmd("Get-VMSnapshot", VMName="fw01", Name=wire(points.out[0]).Name),
             CommandCall("Start-VMFailover", (("Confirm", False), ("ErrorAction", "Stop"))))
    assert io.failed is None, io.failed
    assert fleet.vm("hv-b1", "fw01").replication.state == "FailedOverWaitingCompletion"  # type: ignore[union-attr]
    assert run(b1, cmd("Start-VM", Name="fw01")).failed is None
    assert fleet.vm("hv-b1", "fw01").state == "Running"
    refused = run(HyperVEngine(fleet, "hv-a1"), cmd("Start-VMFailover", VMName="fw01", AsTest=None))
    assert refused.errors[0].Exception.Message == "'Prepare' is the only valid parameter for a primary virtual machine."


def test_set_adapter_teaming(fleet: Fleet, a1: HyperVEngine) -> None:
    io = run(a1, cmd("Set-VMNetworkAdapter", VMName="fw01", Name="WAN", AllowTeaming="On", Passthru=None))
    assert [str(wire(o).AllowTeaming) for o in io.out] == ["On"]
    assert fleet.vm("hv-a1", "fw01").adapters[1].allow_teaming == "On"


def test_concurrent_pipelines_are_safe(fleet: Fleet, a1: HyperVEngine) -> None:
    failures: list[object] = []

    def worker() -> None:
        for _ in range(5):
            io = run(a1, cmd("Get-VM"), cmd("Get-VMNetworkAdapter"))
            if io.failed or io.errors:
                failures.append(io.failed or io.errors)
            fleet.apply_control("vm_state", {"host": "hv-a1", "vm": "web01", "state": "Running"})

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not failures and not any(t.is_alive() for t in threads)


def test_piped_snapshots_bind_by_property_name(a1: HyperVEngine) -> None:
    # No Get-VMSnapshot parameter takes a VMSnapshot by value; -Id takes its Id property by name.
    io = run(a1, cmd("Get-VMSnapshot", VMName="web01"), cmd("Get-VMSnapshot"))
    assert io.failed is None and not io.errors
    assert [wire(o).Name for o in io.out] == ["baseline", "before-update", "after-update"]


def test_a_list_to_a_scalar_parameter_fails_the_statement(a1: HyperVEngine) -> None:
    io = run(a1, cmd("Get-VMSnapshot", VMName="web01", Name=["baseline"]))
    assert io.failed is not None and io.out == []
    assert io.failed.FullyQualifiedErrorId == (
        "CannotConvertArgument,Microsoft.HyperV.PowerShell.Commands.GetVMSnapshotCommand")
    assert io.failed.CategoryInfo.Reason == "ParameterBindingException" and io.failed.CategoryInfo.TargetName is None
