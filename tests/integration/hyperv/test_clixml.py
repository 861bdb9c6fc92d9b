"""``FastSerializer`` returns exactly what pypsrp's ``Serializer`` returns, on real lab output and Windows captures.

Every CLIXML text pypsrp deserializes during real pipelines (pool negotiation, output objects, error and
warning records, progress records, pipeline states) is recorded by a pypsrp ``Serializer`` subclass, then
deserialized again by both serializers and compared structurally (types, every attribute, ``_xml``, nested
objects, reference maps). The Windows captures in ``../shared/fixtures/winrm`` are defragmented and unpacked
through pypsrp's own ``Message.unpack`` with each serializer.
"""

from __future__ import annotations

import base64
import copy
import re
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from queue import Queue
from typing import Any, Callable

import pytest
import yaml
from pypsrp.complex_objects import ObjectMeta
from pypsrp.messages import Message
from pypsrp.powershell import Fragment, PowerShell, RunspacePool
from pypsrp.serializer import Serializer

from jobs.hyperv.clixml import FastSerializer, LazyXmlObject, use_fast_deserializer
from lab.engine import Invocation, PipelineIO, error_record
from tests.support.fixtures_lab import lab_wsman

pytest.importorskip("lab.cmdlets", reason="lab/cmdlets.py (HyperVEngine) is not in the checkout yet")

FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures" / "winrm"


def structure(value: Any, depth: int = 0) -> Any:
    """A comparable picture of a deserialized value: type names and every attribute, recursively."""
    assert depth < 60, "unexpectedly deep (a cycle?)"
    d = depth + 1
    if value is None or isinstance(value, (bool, int, float, str, bytes, uuid.UUID, type)):
        return (type(value).__name__, value)
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [structure(v, d) for v in value])
    if isinstance(value, dict):
        return ("dict", [(structure(k, d), structure(v, d)) for k, v in value.items()])
    if isinstance(value, Queue):
        return ("Queue", [structure(v, d) for v in list(value.queue)])
    if isinstance(value, ET.Element):
        return ("Element", ET.tostring(value))
    if isinstance(value, LazyXmlObject):
        # pypsrp's GenericComplexObject with _xml made on first read: compare what a reader sees
        return ("GenericComplexObject", [(k, structure(v, d)) for k, v in sorted(value.pypsrp_vars().items())])
    if hasattr(value, "__dict__"):
        return (type(value).__qualname__, [(k, structure(v, d)) for k, v in sorted(vars(value).items())])
    return (type(value).__name__, repr(value))


class RecordingSerializer(Serializer):
    """pypsrp's own serializer, noting every top-level text it is asked to deserialize."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, ObjectMeta | None]] = []

    def deserialize(self, element: Any, metadata: ObjectMeta | None = None, clear: bool = True) -> Any:
        if clear and isinstance(element, str):
            self.calls.append((element, copy.copy(metadata)))
        return super().deserialize(element, metadata, clear)


def outcome(fn: Callable[[], Any]) -> Any:
    try:
        return ("ok", structure(fn()))
    except Exception as exc:  # noqa: BLE001 - the same failure is part of "the same result"
        return ("raised", type(exc).__name__)


def assert_same(calls: list[tuple[str, ObjectMeta | None]]) -> None:
    for text, meta in calls:
        want = outcome(lambda: Serializer().deserialize(text, copy.copy(meta)))
        got = outcome(lambda: FastSerializer().deserialize(text, copy.copy(meta)))
        assert got == want, text[:300]


def record(wsman: Any, pipelines: list[list[tuple[str, dict[str, Any]]]],
           configuration: str = "Microsoft.PowerShell") -> RecordingSerializer:
    pool = RunspacePool(wsman, configuration_name=configuration)
    recorder = RecordingSerializer()
    pool._serializer = recorder
    pool._fragmenter.serializer = recorder
    with pool:
        for commands in pipelines:
            with PowerShell(pool) as ps:
                for cmdlet, params in commands:
                    ps.add_cmdlet(cmdlet)
                    if params:
                        ps.add_parameters(params)
                ps.invoke()
    return recorder


def _tags(calls: list[tuple[str, ObjectMeta | None]]) -> str:
    return " ".join(text for text, _ in calls)


READS: list[list[tuple[str, dict[str, Any]]]] = [
    [("Get-VM", {})],
    [("Get-VM", {}), ("Get-VMNetworkAdapter", {})],
    [("Get-VM", {}), ("Get-VMMemory", {})],
    [("Get-VMSnapshot", {"VMName": "*"})],
    [("Get-VMReplication", {})],
    [("Measure-VMReplication", {})],
    [("Get-VMHost", {})],
    [("Get-VM", {"Name": "no-such-vm"})],  # non-terminating error record
    [("Get-VM", {"Name": "no-such-vm", "ErrorAction": "Stop"})],  # terminating: Failed state
    [("Get-NoSuchCmdlet", {})],
]


def test_same_result_on_every_read_cmdlet_and_error(lab: Any) -> None:
    host = next(iter(lab.fleet.hosts))
    recorder = record(lab_wsman(lab, host), READS)
    text = _tags(recorder.calls)
    for type_name in ("VirtualMachine", "VMNetworkAdapter", "VMMemory", "VMSnapshot", "VMReplication",
                      "VMReplicationHealth", "VMHost", "System.Management.Automation.ErrorRecord"):
        assert type_name in text, f"the lab sent no {type_name}"
    assert "<Ref " in text or "<TNRef " in text
    assert len(recorder.calls) > 100
    assert_same(recorder.calls)


def test_same_result_on_mutating_cmdlets(make_lab: Callable[..., Any]) -> None:
    lab = make_lab()
    host = next(iter(lab.fleet.hosts))
    vms = lab.fleet.hosts[host].vms
    off = next(v.name for v in vms if v.state == "Off" and v.replication is None or v.name.startswith("mon"))
    running = next(v.name for v in vms if v.state == "Running")
    primary = next(v.name for v in vms if v.replication is not None and v.replication.mode == "Primary")
    writes: list[list[tuple[str, dict[str, Any]]]] = [
        [("Start-VM", {"Name": off, "Passthru": None})],
        [("Start-VM", {"Name": running})],  # warning: already in the specified state
        [("Checkpoint-VM", {"Name": running, "SnapshotName": "cp <&> 'x' _x0041_", "Passthru": None})],
        [("Set-VMNetworkAdapter", {"VMName": running, "AllowTeaming": "On", "Passthru": None})],
        [("Suspend-VMReplication", {"VMName": primary, "Passthru": None})],
        [("Start-VMFailover", {"VMName": primary, "Prepare": None, "Confirm": False})],
        [("Stop-VM", {"Name": running, "TurnOff": None, "Force": None, "Passthru": None})],
    ]
    recorder = record(lab_wsman(lab, host), writes)
    assert "WarningRecord" in _tags(recorder.calls) or "already in the specified state" in _tags(recorder.calls)
    assert_same(recorder.calls)


class _StreamsEngine:
    """Emits every record kind a pipeline can send: output, warning, progress, errors, a failure."""

    def __init__(self, fleet: Any, host_name: str) -> None:
        self.name = host_name

    def run(self, invocation: Invocation, io: PipelineIO) -> None:
        for call in invocation.commands:
            io.output({"key": "value", "n": 1})
            io.output(["a", None, 2, 3.5, True, "tab\there _x000A_ line"])
            io.warning("careful: <tags> & 'quotes'")
            io.progress("Exporting", "half way", 50, activity_id=3)
            io.progress("Exporting", "done", 100, activity_id=3, completed=True)
            io.error(error_record("a non-terminating error", "Some.Error", target="vm1"))
            if call.name == "Fail":
                io.fail(error_record("it broke", "Broke.Id", activity="Fail"))


def test_same_result_on_progress_warning_and_error_records(make_lab: Callable[..., Any]) -> None:
    lab = make_lab(engine_factory=_StreamsEngine)
    host = next(iter(lab.fleet.hosts))
    recorder = record(lab_wsman(lab, host), [[("Emit", {})], [("Fail", {})]])
    text = _tags(recorder.calls)
    for kind in ("PercentComplete", "WarningRecord", "ErrorRecord"):
        assert kind in text, kind
    assert_same(recorder.calls)


def _psrp_messages(path: Path) -> list[bytes]:
    """The PSRP messages the Windows host sent in one capture, defragmented."""
    data = yaml.safe_load(path.read_text())
    if "schemas.microsoft.com/powershell" not in path.read_text():
        return []
    buffers: dict[int, bytes] = {}
    messages: list[bytes] = []
    for exchange in data["messages"]:
        if "schemas.microsoft.com/powershell" not in exchange["request"]:
            continue  # a cmd.exe shell: its streams are plain text, not PSRP
        for b64 in re.findall(r"<rsp:Stream[^>]*>([^<]+)</rsp:Stream>", exchange.get("response") or ""):
            raw = base64.b64decode(b64)
            while raw:
                frag, raw = Fragment.unpack(raw)
                buffers[frag.object_id] = (b"" if frag.start else buffers.get(frag.object_id, b"")) + frag.data
                if frag.end:
                    messages.append(buffers.pop(frag.object_id))
    return messages


def test_same_result_on_recorded_windows_payloads() -> None:
    files = sorted(FIXTURES.glob("*.yml"))
    assert files, f"no captures in {FIXTURES}"
    seen = 0
    for path in files:
        for raw in _psrp_messages(path):
            want = outcome(lambda: Message.unpack(raw, Serializer()).data)
            got = outcome(lambda: Message.unpack(raw, FastSerializer()).data)
            assert got == want, (path.name, raw[40:340])
            seen += 1
    assert seen > 200


def test_sessions_use_the_fast_deserializer(lab: Any) -> None:
    pool = RunspacePool(lab_wsman(lab, next(iter(lab.fleet.hosts))))
    use_fast_deserializer(pool)
    assert isinstance(pool._serializer, FastSerializer) and pool._fragmenter.serializer is pool._serializer
    with pool, PowerShell(pool) as ps:
        out = ps.add_cmdlet("Get-VM").invoke()
    assert out and all("Microsoft.HyperV.PowerShell.VirtualMachine" in o.types[0] for o in out)
