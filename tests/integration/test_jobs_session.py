"""HostSession mechanics through the lab's real WS-Man + PSRP layer, with the protocol-test engine.

These do not need the Hyper-V engine: deadlines and stop, non-terminating errors, HTTP exchanges,
rebuilds. ``Command`` objects are built directly here because the test engine's commands (Wait-Stop,
Warn-And-Error) are deliberately not in hvbot's registry.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import pytest

from jobs.hyperv.commands import Command, Pipeline
from jobs.hyperv.errors import HostTimeout, PowerShellError
from jobs.hyperv.hosts import load_inventory
from jobs.hyperv.session import HostSession
from jobs.settings import JobSettings
from tests.integration.lab_test_engine import EngineRegistry, spec_fleet


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
    before, served = session.exchanges, lab.hosts["h1"].server.requests
    for i in range(10):
        session.run(_pipe("Echo", ("Name", str(i))))
    sent = session.exchanges - before
    assert lab.hosts["h1"].server.requests - served == sent  # the client's count is the host's count
    # Command + Receive + Signal(Terminate); now and then the output and the final state arrive in two
    # Receives (the engine runs on its own thread), hence the small allowance above 3.0.
    assert 30 <= sent <= 33, sent


def test_lost_shell_is_rebuilt_transparently(proto: tuple[Any, HostSession]) -> None:
    lab, session = proto
    session.run(_pipe("Echo", ("Name", "1")))
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
