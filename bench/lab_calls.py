"""Lab benchmark: the lab runs in its own process (`hvbot lab`), the pypsrp client here.

Prints the mean time of one cmdlet on a warm pool, HTTP exchanges per pipeline (counted by the lab,
read from its control endpoint), and the time for 2,000 objects in one pipeline. Last line:
RESULT warm_ms=<float> exchanges=<int> objects2000_s=<float>
"""

from __future__ import annotations

import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

WARM_RUNS = 200
HVBOT = str(Path(sys.executable).parent / "hvbot")


def start_lab(inventory: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [HVBOT, "lab", "--hosts", "1", "--vms-per-host", "2000", "--write-inventory", str(inventory)],
        stdout=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if line.strip() != "lab ready":
        proc.kill()
        raise SystemExit(f"lab did not start (got {line!r})")
    return proc


def host_requests(control_url: str) -> int:
    return int(requests.get(control_url.replace("/control", "/hosts"), timeout=10).json()[0]["requests"])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        inventory = Path(tmp) / "inventory.yml"
        proc = start_lab(inventory)
        try:
            data = yaml.safe_load(inventory.read_text())
            host, control = data["hosts"][0], data["lab"]["control_url"]
            port = int(host["url"].rsplit(":", 1)[1].split("/")[0])
            wsman = WSMan("127.0.0.1", port=port, path="wsman", ssl=False, auth="basic", encryption="never",
                          username=host["username"], password=host["password"])
            with RunspacePool(wsman) as pool:
                started = time.perf_counter()
                vms = PowerShell(pool).add_cmdlet("Get-VM").invoke()
                objects_s = time.perf_counter() - started
                name = str(vms[0].adapted_properties.get("Name", vms[0]))
                print(f"Get-VM on a 2,000-VM host: {len(vms)} objects in {objects_s:.3f} s")
                for _ in range(5):  # warm-up
                    PowerShell(pool).add_cmdlet("Get-VM").add_parameter("Name", name).invoke()
                before, times = host_requests(control), []
                for _ in range(WARM_RUNS):
                    t0 = time.perf_counter()
                    PowerShell(pool).add_cmdlet("Get-VM").add_parameter("Name", name).invoke()
                    times.append(time.perf_counter() - t0)
                exchanges = round((host_requests(control) - before) / WARM_RUNS)
                warm_ms = statistics.mean(times) * 1000
                print(f"Get-VM -Name {name} on a warm pool, {WARM_RUNS} runs: mean {warm_ms:.2f} ms, "
                      f"p50 {statistics.median(times) * 1000:.2f} ms, {exchanges} HTTP exchanges per pipeline")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    print(f"RESULT warm_ms={warm_ms:.2f} exchanges={exchanges} objects2000_s={objects_s:.3f}")


if __name__ == "__main__":
    main()
