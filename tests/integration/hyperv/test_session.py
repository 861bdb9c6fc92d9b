"""HostSession mechanics through the lab's real WS-Man + PSRP layer, with the protocol-test engine.

These do not need the Hyper-V engine: deadlines and stop, non-terminating errors, HTTP exchanges,
rebuilds. ``Command`` objects are built directly here because the test engine's commands (Wait-Stop,
Warn-And-Error) are deliberately not in hvbot's registry.
"""

from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable

import pytest
from pypsrp.messages import CreatePipeline
from pypsrp.serializer import Serializer

from jobs.hyperv.clixml import FastSerializer
from jobs.hyperv.commands import Command, Pipeline
from jobs.hyperv.errors import HostTimeout, PowerShellError
from jobs.hyperv.hosts import load_inventory
from jobs.hyperv.session import HostSession
from jobs.hyperv.settings import JobSettings
from tests.support.lab_test_engine import EngineRegistry, spec_fleet


def _pipe(name: str, *params: tuple[str, Any]) -> Pipeline:
    return Pipeline((Command(name, tuple(params)),))


@pytest.fixture
def proto(make_lab: Callable[..., Any], tmp_path: Path) -> tuple[Any, HostSession]:
    engines = EngineRegistry()
    lab = make_lab(spec_fleet("h1"), engine_factory=engines)
    lab.engines = engines
    config = load_inventory(lab.write_inventory(tmp_path / "inv.yml")).host("h1")
    return lab, HostSession(config, JobSettings(deadline_s=5))


def test_deadline_stops_a_running_pipeline(proto: tuple[Any, HostSession]) -> None:
    lab, session = proto
    started = time.monotonic()
    with pytest.raises(HostTimeout) as info:
        session.run(_pipe("Wait-Stop"), deadline_s=1.0)
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 2.0, elapsed
    assert lab.engines.engines["h1"].stopped.wait(5), "the host never saw the stop signal"
    assert "h1" in str(info.value) and "1 s" in str(info.value)
    assert session.run(_pipe("Echo", ("Name", "after")), deadline_s=2)[0] == "Name=after"


def test_non_terminating_error_record_is_an_error(proto: tuple[Any, HostSession]) -> None:
    _, session = proto
    with pytest.raises(PowerShellError) as info:
        session.run(_pipe("Warn-And-Error"))
    err = info.value
    assert err.fq_error_id == "InvalidParameter,Get-VM" and err.category == "InvalidArgument"
    assert "VM 'nope' was not found." in str(err)


def test_error_action_stop_is_sent_on_every_command(proto: tuple[Any, HostSession]) -> None:
    lab, session = proto
    out = session.run(Pipeline((Command("Echo", (("Name", "a"),)), Command("Echo", (), mutating=True))))
    assert out  # the engine echoes parameters of each command
    sent = [e.parameters for e in lab.command_log("h1")[-2:]]
    assert sent[0] == (("Name", "a"), ("ErrorAction", "Stop"))
    assert sent[1] == (("ErrorAction", "Stop"), ("Confirm", False))


def test_warm_call_is_three_http_exchanges(proto: tuple[Any, HostSession]) -> None:
    lab, session = proto
    session.run(_pipe("Echo", ("Name", "warm-up")))
    session.settle()  # the Signal that closes a finished pipeline is sent after the call returns
    before, served = session.exchanges, lab.hosts["h1"].server.requests
    for i in range(10):
        session.run(_pipe("Echo", ("Name", str(i))))
    session.settle()
    sent = session.exchanges - before
    assert lab.hosts["h1"].server.requests - served == sent  # the client's count is the host's count
    # Command + Receive + Signal(Terminate); now and then the output and the final state arrive in two
    # Receives (the engine runs on its own thread), hence the small allowance above 3.0.
    assert 30 <= sent <= 33, sent


def test_every_finished_pipeline_is_closed_before_the_next_command(
        make_lab: Callable[..., Any], tmp_path: Path) -> None:
    # A host that allows 2 open commands per shell: had any deferred close not reached it before the next
    # call, the third call would hit the quota (and force a rebuild).
    lab = make_lab(spec_fleet("h1"), engine_factory=EngineRegistry(), max_commands_per_shell=2)
    session = HostSession(load_inventory(lab.write_inventory(tmp_path / "inv.yml")).host("h1"), JobSettings(deadline_s=5))
    outputs = [session.run(_pipe("Echo", ("Name", str(i)))) for i in range(12)]
    assert [o[0] for o in outputs] == [f"Name={i}" for i in range(12)]
    assert session.rebuilds == 0
    session.close()
    assert not session.is_open


def test_a_forked_child_closes_pipelines_on_its_own_threads(proto: tuple[Any, HostSession]) -> None:
    # RQ's default worker forks a work horse per job: closer threads of the parent do not exist there.
    _, session = proto
    session.run(_pipe("Echo", ("Name", "parent")))
    session.settle()  # the parent's closer pool now has an idle thread
    pid = os.fork()
    if pid == 0:  # the child: exit code 0 only if its close ran (no timeout, no rebuild)
        code = 1
        try:
            child = HostSession(session.config, JobSettings(deadline_s=5))
            ok = child.run(_pipe("Echo", ("Name", "child")))[0] == "Name=child"
            child.settle()
            code = 0 if ok and child.rebuilds == 0 and child.is_open else 1
            child.close()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_open_warms_the_session(proto: tuple[Any, HostSession]) -> None:
    lab, session = proto
    assert not session.is_open
    session.open()
    assert session.is_open
    opened = session.exchanges
    session.run(_pipe("Echo", ("Name", "first")))
    session.settle()
    assert 3 <= session.exchanges - opened <= 4  # the first call pays no pool-open exchanges
    session.open()  # already open: nothing sent
    assert session.exchanges - opened <= 4


class _CheckedSerializer(FastSerializer):
    """Our serializer, comparing every CREATE_PIPELINE it sends with pypsrp's own fresh serialisation."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[bytes, bytes]] = []

    def serialize(self, value: Any, metadata: Any = None, parent: Any = None, clear: bool = True) -> Any:
        out = super().serialize(value, metadata, parent, clear)
        if isinstance(value, CreatePipeline) and parent is None:
            fresh = ET.tostring(Serializer().serialize(value), encoding="utf-8", method="xml")
            self.sent.append((out if isinstance(out, bytes) else ET.tostring(out, encoding="utf-8"), fresh))
        return out


def test_remembered_pipeline_bodies_equal_pypsrps_serialisation(proto: tuple[Any, HostSession]) -> None:
    _, session = proto
    session.open()
    pool = session._pool
    assert pool is not None
    checked = _CheckedSerializer()
    checked.cipher = pool._serializer.cipher
    pool._serializer = pool._fragmenter.serializer = checked
    calls = [("a",), ("a",), ("b",), (1,), (True,), (["x", "y"],)]
    outputs = [session.run(_pipe("Echo", ("Name", value))) for (value,) in calls]
    assert [o[0] for o in outputs] == ["Name=a", "Name=a", "Name=b", "Name=1", "Name=True", "Name=['x', 'y']"]
    assert len(checked.sent) == len(calls)
    assert all(ours == fresh for ours, fresh in checked.sent)
    assert checked.sent[0][0] is checked.sent[1][0]  # the second identical call reused the first body
    assert len({ours for ours, _ in checked.sent}) == 5


def test_lost_shell_is_rebuilt_transparently(proto: tuple[Any, HostSession]) -> None:
    lab, session = proto
    session.run(_pipe("Echo", ("Name", "1")))
    session.settle()  # the shell is lost between calls, after the first call's pipeline was closed
    lab.hosts["h1"].server.service.close_all()
    assert session.run(_pipe("Echo", ("Name", "2")))[0] == "Name=2"
    assert session.rebuilds == 1


def test_statements_share_one_invocation(proto: tuple[Any, HostSession]) -> None:
    lab, session = proto
    session.run(_pipe("Echo", ("Name", "warm-up")))
    before = session.exchanges
    out = session.run([_pipe("Echo", ("Name", "first")), _pipe("Emit", ("Count", 3))])
    assert out == ["Name=first", "ErrorAction=Stop", 0, 1, 2]  # both statements' output, in statement order
    assert session.exchanges - before <= 4  # one Command, its Receive(s), one Signal: not two rounds


def test_a_failing_statement_fails_the_call(proto: tuple[Any, HostSession]) -> None:
    _, session = proto
    with pytest.raises(PowerShellError) as info:
        session.run([_pipe("Throw"), _pipe("Echo", ("Name", "never"))])
    assert "Throw" in str(info.value) and "It failed." in str(info.value)
