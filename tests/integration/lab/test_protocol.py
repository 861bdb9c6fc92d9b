"""The lab's WS-Management + PSRP layer through the unmodified pypsrp client (no mocks).

A small protocol engine (tests/support/lab_test_engine.py) stands in for Hyper-V here; the real
cmdlets are exercised in test_lab_hyperv_* once lab.cmdlets exists.
"""

from __future__ import annotations

import pytest
import requests
from pypsrp.complex_objects import PSInvocationState
from pypsrp.exceptions import WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool

from tests.support.fixtures_lab import lab_wsman
from tests.support.lab_test_engine import EngineRegistry, spec_fleet

HOSTILE = [
    "vm1'; Remove-VM -Name * -Force; '",
    'double "quoted" value',
    "semi;colon",
    "$(Stop-Computer -Force)",
    "back`tick `$env:PATH",
    "line one\nline two\r\nline three",
    "x" * 100_000,
    "Ünïcödé 日本語 😀 🖥️",
    "עברית RTL \u202eevil\u202c",
    "<xml>&amp;</xml> ]]> \x01\x1f",
    "",
    "   ",
]


@pytest.fixture
def proto(make_lab):
    engines = EngineRegistry()
    lab = make_lab(spec_fleet("h1", "h2", jea={"h2": "HvBot"}), engine_factory=engines)
    lab.engines = engines
    return lab


def _pool(lab, host="h1", **kwargs):
    return RunspacePool(lab_wsman(lab, host, **kwargs.pop("wsman", {})), **kwargs)


def test_pool_open_and_close_releases_the_shell(proto):
    service = proto.hosts["h1"].server.service
    with _pool(proto) as pool:
        assert pool.state == 2  # OPENED
        assert service.shell_count() == 1
        assert pool.is_alive()
    assert service.shell_count() == 0


def test_cmdlet_output_and_parameters_in_order(proto):
    with _pool(proto) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Echo").add_parameter("Name", "vm1").add_parameter("Force", None).add_argument(5)
        assert ps.invoke() == ["Name=vm1", "Force=None", "None=5"]
        assert ps.state == PSInvocationState.COMPLETED and not ps.had_errors
    entry = proto.command_log("h1")[-1]
    assert entry.cmdlet == "Echo" and entry.parameters == (("Name", "vm1"), ("Force", None), (None, 5))
    assert entry.configuration == "Microsoft.PowerShell" and not entry.is_script


def test_a_repeated_pipeline_body_is_deserialized_once_and_still_answers_each_call(proto):
    from lab import runspace_pool

    runspace_pool._BODIES.clear()
    with _pool(proto) as pool:
        for name in ("vm1", "vm2", "vm1", "vm2", "vm1"):
            ps = PowerShell(pool)
            ps.add_cmdlet("Echo").add_parameter("Name", name)
            assert ps.invoke() == [f"Name={name}"]
    assert len(runspace_pool._BODIES) == 2  # one per distinct body: the repeats came from the cache
    assert [e.parameters for e in proto.command_log("h1")[-5:]] == [(("Name", n),) for n in
                                                                     ("vm1", "vm2", "vm1", "vm2", "vm1")]


def test_pipeline_input_reaches_the_engine(proto):
    with _pool(proto) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Echo")
        assert ps.invoke(input=["a", "b", 3]) == ["a", "b", 3]


def test_two_thousand_objects_in_one_pipeline(proto):
    host = proto.hosts["h1"].server
    with _pool(proto) as pool:
        before = host.requests
        ps = PowerShell(pool)
        ps.add_cmdlet("Emit").add_parameter("Count", 2000)
        assert ps.invoke() == list(range(2000))
        assert host.requests - before <= 12  # Command + a few full Receives, not one per object


def test_one_mebibyte_output_respects_max_envelope_size(proto):
    host = proto.hosts["h1"].server
    with _pool(proto) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Big").add_parameter("Size", 1024 * 1024)
        assert ps.invoke() == ["x" * 1024 * 1024]
        assert host.largest_response <= pool.connection.max_envelope_size


def test_hundred_pipelines_on_one_pool_leave_no_commands_behind(proto):
    shells = proto.hosts["h1"].server.service._shells
    with _pool(proto) as pool:
        for i in range(100):
            with PowerShell(pool) as ps:
                ps.add_cmdlet("Emit").add_parameter("Count", 1)
                assert ps.invoke() == [0]
        (shell,) = shells.values()
        assert shell.runs == {}


def test_reinvoking_a_closed_powershell_reuses_its_command_id(proto):
    with _pool(proto) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Emit").add_parameter("Count", 2)
        assert ps.invoke() == [0, 1]
        ps.close()
        assert ps.invoke() == [0, 1, 0, 1]  # pypsrp keeps the earlier output on the object


def test_command_quota_per_shell(make_lab):
    lab = make_lab(spec_fleet("h1"), engine_factory=EngineRegistry(), max_commands_per_shell=3)
    with _pool(lab) as pool:
        for _ in range(3):
            PowerShell(pool).add_cmdlet("Emit").add_parameter("Count", 1).invoke()  # never closed
        with pytest.raises(WSManFaultError) as info:
            PowerShell(pool).add_cmdlet("Emit").add_parameter("Count", 1).invoke()
    assert info.value.code == "w:InternalError"
    assert "maximum number of concurrent commands per shell" in info.value.reason


def test_https_verified_against_the_lab_ca(make_lab):
    lab = make_lab(spec_fleet("h1"), https=True, engine_factory=EngineRegistry())
    assert lab.hosts["h1"].url.startswith("https://127.0.0.1:")
    with _pool(lab) as pool:
        assert PowerShell(pool).add_cmdlet("Emit").add_parameter("Count", 3).invoke() == [0, 1, 2]
    with pytest.raises(requests.exceptions.SSLError):  # the system CAs do not know the lab CA
        _pool(lab, wsman={"cert_validation": True}).open()


def test_stop_signal_ends_a_long_pipeline(proto):
    engine = proto.engines.engines["h1"]
    with _pool(proto) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Wait-Stop")
        ps.begin_invoke()
        assert engine.started.wait(10)
        ps.stop()
        assert ps.state == PSInvocationState.STOPPED
        assert engine.stopped.wait(10), "the engine never saw io.stopping"
        ps.close()
        assert PowerShell(pool).add_cmdlet("Emit").add_parameter("Count", 1).invoke() == [0]


def test_non_terminating_error_as_pypsrp_sees_it(proto):
    with _pool(proto) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Warn-And-Error")
        assert ps.invoke() == ["after the error"]
        assert ps.state == PSInvocationState.COMPLETED and ps.had_errors is False
        (error,) = ps.streams.error
        assert error.fq_error == "InvalidParameter,Get-VM" and str(error) == "VM 'nope' was not found."
        assert [w.message for w in ps.streams.warning] == ["careful"]


def test_terminating_error_as_pypsrp_sees_it(proto):
    with _pool(proto) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Throw")
        assert ps.invoke() == []
        assert ps.state == PSInvocationState.FAILED and ps.had_errors is True
        assert ps.streams.error[-1].fq_error == "Failed,Throw"


def test_jea_host_refuses_script_but_runs_cmdlets(proto):
    with _pool(proto, "h2", configuration_name="HvBot") as pool:
        ps = PowerShell(pool)
        ps.add_script("Get-VM | Remove-VM")
        ps.invoke()
        assert ps.state == PSInvocationState.FAILED and ps.had_errors
        error = ps.streams.error[-1]
        assert error.fq_error == "ScriptsNotAllowed" and "no-language mode" in str(error)
        assert PowerShell(pool).add_cmdlet("Emit").add_parameter("Count", 1).invoke() == [0]
    assert proto.command_log("h2")[0].configuration == "HvBot"
    assert proto.command_log("h2")[0].is_script


def test_unknown_configuration_is_a_fault(proto):
    with pytest.raises(WSManFaultError) as info:
        _pool(proto, "h1", configuration_name="HvBot").open()  # h1 has no JEA endpoint
    assert info.value.code == 2150858752  # a guess: the real code was never captured (psrp.md)


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_strings_arrive_exactly_as_sent(proto, value):
    with _pool(proto) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-VM").add_parameter("Name", value)
        ps.invoke()
    entry = proto.command_log("h1")[-1]
    assert entry.cmdlet == "Get-VM"
    assert len(entry.parameters) == 1
    name, received = entry.parameters[0]
    assert name == "Name" and isinstance(received, str) and received == value


def test_long_running_pipeline_survives_operation_timeouts(proto):
    # operation_timeout=1: Receives time out (fault 2150858793) and pypsrp polls again, as on Windows.
    with _pool(proto, wsman={"operation_timeout": 1, "read_timeout": 5}) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Slow").add_parameter("Seconds", 1.5)
        assert ps.invoke() == ["slow done"]
