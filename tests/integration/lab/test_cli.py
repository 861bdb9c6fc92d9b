"""``hvbot lab`` as a process: inventory, ``lab ready``, a real pypsrp call, clean stop on SIGTERM/SIGINT."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

HVBOT = str(Path(sys.executable).parent / "hvbot")


def _start(*args: str) -> tuple[subprocess.Popen[str], "queue.Queue[str]"]:
    proc = subprocess.Popen([HVBOT, "lab", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
    return proc, lines


def _wait_ready(proc: subprocess.Popen[str], lines: "queue.Queue[str]") -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            assert lines.get(timeout=0.2) == "lab ready\n"
            return
        except queue.Empty:
            continue
    proc.kill()
    pytest.fail(f"no 'lab ready' (exit {proc.poll()}); stderr: {proc.stderr.read()[-2000:] if proc.stderr else ''}")


def _stop(proc: subprocess.Popen[str], lines: "queue.Queue[str]", signum: int) -> None:
    proc.send_signal(signum)
    assert proc.wait(timeout=30) == 0
    assert lines.empty(), "the lab printed more than one line on stdout"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_lab_command_http(tmp_path: Path, signum: int) -> None:
    inventory = tmp_path / "inv.yml"
    proc, lines = _start("--write-inventory", str(inventory))
    try:
        _wait_ready(proc, lines)
        data = yaml.safe_load(inventory.read_text())
        assert len(data["hosts"]) >= 4
        host = data["hosts"][0]
        assert {"name", "site", "url", "auth", "username", "password", "fqdn"} <= set(host)
        assert host["url"].startswith("http://127.0.0.1:") and host["url"].endswith("/wsman")
        assert "ca_file" not in host and host["auth"] == "basic"
        assert data["lab"]["control_url"].startswith("http://127.0.0.1:")
        port = int(host["url"].rsplit(":", 1)[1].split("/")[0])
        wsman = WSMan("127.0.0.1", port=port, path="wsman", ssl=False, auth="basic", encryption="never",
                      username=host["username"], password=host["password"])
        with RunspacePool(wsman) as pool:
            ps = PowerShell(pool).add_cmdlet("Get-VM")
            vms = ps.invoke()
            assert vms and not ps.streams.error
        log = requests.get(data["lab"]["control_url"].replace("/control", "/log")).json()
        assert log[-1]["cmdlet"] == "Get-VM" and log[-1]["host"] == host["name"]
    finally:
        _stop(proc, lines, signum)
    assert data["hosts"][0]["password"] not in (proc.stderr.read() if proc.stderr else "")


def test_lab_command_https_and_jea(tmp_path: Path) -> None:
    inventory = tmp_path / "inv.yml"
    from lab.fleet_file import default_fleet  # the first host's name

    first = next(iter(default_fleet().hosts))
    proc, lines = _start("--https", "--jea-host", first, "--write-inventory", str(inventory))
    try:
        _wait_ready(proc, lines)
        data = yaml.safe_load(inventory.read_text())
        host = data["hosts"][0]
        assert host["url"].startswith("https://127.0.0.1:") and Path(host["ca_file"]).is_file()
        assert host["configuration"] == "HvBot"
        port = int(host["url"].rsplit(":", 1)[1].split("/")[0])
        wsman = WSMan("127.0.0.1", port=port, path="wsman", ssl=True, auth="basic", cert_validation=host["ca_file"],
                      username=host["username"], password=host["password"])
        with RunspacePool(wsman, configuration_name="HvBot") as pool:
            ps = PowerShell(pool).add_script("Get-VM")
            ps.invoke()
            assert ps.had_errors and ps.streams.error[-1].fq_error == "ScriptsNotAllowed"
    finally:
        _stop(proc, lines, signal.SIGTERM)


def test_lab_command_rejects_unknown_jea_host(tmp_path: Path) -> None:
    result = subprocess.run([HVBOT, "lab", "--jea-host", "no-such-host", "--write-inventory", str(tmp_path / "i.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "no-such-host" in result.stderr
