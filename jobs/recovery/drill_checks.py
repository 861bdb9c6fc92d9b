"""Before a drill: where would each test VM's network adapters land?

A test-failover VM's adapter connects to the replica adapter's ``TestReplicaSwitchName`` and to nothing when it is
empty (hyperv.md §1.5). Empty is fine: the test VM is isolated. A name that is a production switch of the replica
host (one that any of its VMs' adapters use, the replica VM's own included) would put a copy of a production VM,
with production addresses, on the production network: the drill is refused before anything runs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jobs.hyperv.commands import command, pipeline
from jobs.hyperv.errors import HyperVError
from jobs.hyperv.fleet import Fleet, HostCall
from jobs.hyperv.records import as_str, prop, type_name
from jobs.recovery.model import Member

TEST_SUFFIX = " - test"  # test-failover VMs are '<VM> - Test' (hyperv.md §1.5); their adapters are not production


@dataclass(frozen=True)
class Adapter:
    vm: str
    name: str
    switch: str  # "" when not connected
    test_switch: str  # TestReplicaSwitchName; "" when unset


@dataclass
class NetworkCheck:
    refusals: dict[str, list[str]] = field(default_factory=dict)  # vm -> reasons (the drill does not start)
    notes: dict[str, list[str]] = field(default_factory=dict)  # vm -> facts for the report (not problems)

    @property
    def refused(self) -> bool:
        return any(self.refusals.values())


def adapters_from(objects: Sequence[Any]) -> list[Adapter]:
    return [Adapter(vm=as_str(prop(o, "VMName")) or "", name=as_str(prop(o, "Name")) or "",
                    switch=as_str(prop(o, "SwitchName")) or "",
                    test_switch=as_str(prop(o, "TestReplicaSwitchName")) or "")
            for o in objects if type_name(o) == "VMNetworkAdapter"]


def judge(vm: str, host: str, adapters: Sequence[Adapter]) -> tuple[list[str], list[str]]:
    """(refusals, notes) for one VM's replica adapters, given every adapter on its replica host."""
    production = {a.switch.lower() for a in adapters if a.switch and not a.vm.lower().endswith(TEST_SUFFIX)}
    own = [a for a in adapters if a.vm.lower() == vm.lower()]
    refusals: list[str] = []
    notes: list[str] = []
    if not own:
        notes.append(f"{vm} has no network adapter on {host}: its test VM has no network")
    for a in own:
        if not a.test_switch:
            notes.append(f"adapter '{a.name}': no test switch set, the test VM's adapter is not connected")
        elif a.test_switch.lower() in production:
            which = "its own production switch" if a.test_switch.lower() == a.switch.lower() else \
                "a production switch on that host"
            refusals.append(
                f"adapter '{a.name}' of {vm} on {host} has test switch '{a.test_switch}', which is {which}: the "
                f"test VM would join the production network with production addresses. Set an isolated switch "
                f"(Set-VMNetworkAdapter -VMName '{vm}' -Name '{a.name}' -TestReplicaSwitchName <isolated switch> "
                f"on {host}) or clear it, then drill again")
        else:
            notes.append(f"adapter '{a.name}': test switch '{a.test_switch}'")
    return refusals, notes


def check_networks(fleet: Fleet, members: Sequence[Member]) -> NetworkCheck:
    """One read per replica host (every VM's adapters, piped from Get-VM), then a verdict per VM."""
    by_host: dict[str, list[str]] = defaultdict(list)
    for m in members:
        by_host[m.replica_host].append(m.vm)

    def read(call: HostCall) -> list[Adapter]:
        return adapters_from(call.run(pipeline(command("Get-VM"), command("Get-VMNetworkAdapter", piped=True))))

    out = fleet.fan_out(read, hosts=list(by_host))
    result = NetworkCheck()
    for host, vms in by_host.items():
        for vm in vms:
            if host in out.results:
                result.refusals[vm], result.notes[vm] = judge(vm, host, out.results[host])
            else:
                err = out.errors.get(host)
                why = err.message if isinstance(err, HyperVError) else "no answer"
                result.refusals[vm] = [f"the test network of {vm} on {host} could not be checked ({why})"]
    return result
