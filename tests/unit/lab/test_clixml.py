"""The fast CLIXML path writes exactly the bytes psrpcore's own serializer writes, for every class the lab emits."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator
from xml.etree import ElementTree as ET

import pytest
from psrpcore import ClientPowerShell, ClientRunspacePool, ServerPipeline, ServerRunspacePool
from psrpcore.types import PSRPMessageType
from psrpcore.types._serializer import serialize

from lab import hvdata, replication
from lab.clixml import HyperVOutput, render, write_serialized_output
from lab.fleet_file import default_fleet
from lab.hvobjects import Live, live_values, to_output, to_psobject
from lab.model import Fleet
from lab.serialize import build
from tests.support.lab_io import wire

NOW = datetime(2025, 6, 2, 8, 0, 12, 345678, tzinfo=timezone.utc)
EMITTED = {"VirtualMachine", "VMNetworkAdapter", "VMInternalNetworkAdapter", "VMMemory", "VMSnapshot",
           "VMReplication", "VMReplicationHealth", "VMHost"}


def psrpcore_bytes(obj: Any) -> bytes:
    return ET.tostring(serialize(obj, None), encoding="utf-8", method="xml")


def every_live(fleet: Fleet) -> Iterator[Live]:
    for host in fleet.hosts.values():
        yield Live("VMHost", host)
        yield Live("VMInternalNetworkAdapter", host)
        for vm in host.vms:
            yield Live("VirtualMachine", host, vm)
            yield Live("VMMemory", host, vm)
            yield from (Live("VMNetworkAdapter", host, vm, a) for a in vm.adapters)
            yield from (Live("VMSnapshot", host, vm, c) for c in vm.checkpoints)
            if vm.replication is not None:
                yield Live("VMReplication", host, vm)
                yield Live("VMReplicationHealth", host, vm)


def _unusual_fleet() -> Fleet:
    """The default fleet after things that change values: power loss, a test VM, odd strings and numbers."""
    fleet = default_fleet(now=NOW)
    replication.power_loss(fleet, fleet.host("hv-a2"))
    b1 = fleet.host("hv-b1")
    replication.test_failover(fleet, b1, fleet.vm("hv-b1", "fw01"))
    vm = fleet.vm("hv-a1", "web01")
    vm.notes = "& <b> \"q\" \t tab\nline \u00e9 \u0007 \u0085 \U0001F600"  # escaped without any "_"
    vm.adapters[0].name = "a_x0041_ _X"
    vm.name = "web_x01 & <co>"
    vm.memory.maximum = 3 * 1024 ** 4  # beyond Int32 for the Int64 properties
    vm.adapters[0].ipv4 = []
    vm.adapters[0].switch_name = None
    rep = fleet.vm("hv-b2", "sql02").replication
    assert rep is not None
    rep.last_replication_time = rep.last_applied_log_time = None
    rep.average_latency = timedelta(days=2, microseconds=7)
    rep.health_details = ["one", "two & <three>"]
    return fleet


@pytest.mark.parametrize("make_fleet", [lambda: default_fleet(now=NOW), _unusual_fleet], ids=["default", "unusual"])
def test_fast_path_bytes_equal_psrpcore_for_every_object(make_fleet: Any) -> None:
    fleet = make_fleet()
    seen: set[str] = set()
    for live in every_live(fleet):
        values = live_values(live, NOW)
        expected = psrpcore_bytes(to_psobject(live, NOW))
        assert render(live.ps_kind, values, str(live)) == expected, (live.ps_kind, str(live))
        seen.add(live.ps_kind)
    assert seen == EMITTED


@pytest.mark.parametrize("field, enum", [("state", "VMReplicationState"), ("health", "VMReplicationHealthState"),
                                         ("mode", "VMReplicationMode")])
def test_every_member_of_the_replication_enums(field: str, enum: str) -> None:
    fleet = default_fleet(now=NOW)
    host = fleet.host("hv-b1")
    vm = fleet.vm("hv-b1", "fw01")
    assert vm.replication is not None
    for member in hvdata.enum_members(enum):
        vm.replication = replace(vm.replication, **{field: member})
        for kind in ("VMReplication", "VMReplicationHealth", "VirtualMachine"):
            live = Live(kind, host, vm)
            assert render(kind, live_values(live, NOW), str(live)) == psrpcore_bytes(to_psobject(live, NOW))


def test_missing_values_and_values_given_as_text() -> None:
    """Absent properties, ints as strings, GUIDs/DateTimes/TimeSpans given as text, enum by number."""
    values = {"Name": "x", "VMId": str(uuid.UUID(int=7)), "CreationTime": "2025-01-02T03:04:05+00:00",
              "Uptime": 90.5, "State": 2, "ProcessorCount": "4", "MemoryStartup": 2 ** 40, "Version": "9.0"}
    for cls in EMITTED:
        props = hvdata.class_properties(cls)
        subset = {k: v for k, v in values.items() if k in props}
        assert render(cls, subset, None) == psrpcore_bytes(build(cls, subset, None)), cls
        assert render(cls, {}, "") == psrpcore_bytes(build(cls, {}, "")), cls


def test_output_object_serializes_the_same_through_psrpcore() -> None:
    """A writer that is not the fast path (psrpcore's serializer) gets the same object via its hook."""
    fleet = default_fleet(now=NOW)
    host = fleet.host("hv-a1")
    vm = fleet.vm("hv-a1", "fw01")
    live = Live("VMNetworkAdapter", host, vm, vm.adapters[0])
    out = to_output(live, NOW)
    assert isinstance(out, HyperVOutput)
    assert psrpcore_bytes(out) == out.to_clixml() == psrpcore_bytes(to_psobject(live, NOW))
    assert wire(out).IPAddresses == ["10.0.1.1", "fd00:1::1"]
    with pytest.raises(KeyError):
        HyperVOutput("NoSuchClass", {})


def _running_pipeline() -> tuple[ServerRunspacePool, ServerPipeline]:
    client, server = ClientRunspacePool(), ServerRunspacePool()

    def exchange(src: Any, dst: Any) -> None:
        while (payload := src.data_to_send()) is not None:
            dst.receive_data(payload)
            while dst.next_event() is not None:
                pass

    client.open()
    exchange(client, server)
    exchange(server, client)
    ps = ClientPowerShell(client)
    ps.add_command("Get-VMNetworkAdapter")
    ps.start()
    pipe = ServerPipeline(server, ps.pipeline_id)
    exchange(client, server)
    pipe.start()
    return server, pipe


def test_queued_message_equals_write_output() -> None:
    fleet = default_fleet(now=NOW)
    vm = fleet.vm("hv-a1", "fw01")
    live = Live("VMNetworkAdapter", fleet.host("hv-a1"), vm, vm.adapters[1])
    server, pipe = _running_pipeline()
    pipe.write_output(to_psobject(live, NOW))
    write_serialized_output(pipe, to_output(live, NOW).to_clixml())
    slow, fast = server._send_buffer[-2], server._send_buffer[-1]
    assert fast.data == slow.data
    assert (fast.message_type, fast.pipeline_id, fast.stream_type) == (
        PSRPMessageType.PipelineOutput, pipe.pipeline_id, slow.stream_type)
    assert fast.object_id == slow.object_id + 1
    pipe.complete()
    with pytest.raises(ValueError, match="Completed"):
        write_serialized_output(pipe, b"<Nil />")
