"""Serialization benchmark: 2,000 VMNetworkAdapter objects, psrpcore's serializer vs the lab's fast CLIXML path.

Prints (1) server-side cost per path (values + PSObject + psrpcore serialize, vs values + lab.clixml render),
(2) pypsrp's own deserialization of the same 2,000 objects (the client's floor; the lab cannot change it),
(3) end to end through pypsrp against `hvbot lab` in a subprocess. Last line:
RESULT psrpcore_s=<f> fast_s=<f> pypsrp_deserialize_s=<f> end_to_end_s=<f>
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from xml.etree import ElementTree as ET

import yaml
from psrpcore.types._serializer import serialize
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import Serializer
from pypsrp.wsman import WSMan

from lab.fleet_file import generated_fleet
from lab.hvobjects import Live, to_output, to_psobject

COUNT = 2000
HVBOT = str(Path(sys.executable).parent / "hvbot")


def timed(label: str, fn: object) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()  # type: ignore[operator]
    seconds = time.perf_counter() - started
    print(f"{label}: {seconds:.3f} s ({seconds / COUNT * 1000:.3f} ms per object)")
    return seconds, result


def server_side() -> tuple[float, float, list[bytes]]:
    fleet = generated_fleet(1, COUNT)
    host = fleet.hosts["hv-000"]
    lives = [Live("VMNetworkAdapter", host, vm, vm.adapters[0]) for vm in host.vms]
    now = datetime.now(timezone.utc)
    slow, _ = timed("psrpcore path (values, PSObject, serialize, tostring)",
                    lambda: [ET.tostring(serialize(to_psobject(x, now), None), encoding="utf-8") for x in lives])
    fast, data = timed("fast path (values, lab.clixml render)", lambda: [to_output(x, now).to_clixml() for x in lives])
    return slow, fast, data  # type: ignore[return-value]


def end_to_end() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        inventory = Path(tmp) / "inventory.yml"
        proc = subprocess.Popen([HVBOT, "lab", "--hosts", "1", "--vms-per-host", str(COUNT), "--write-inventory",
                                 str(inventory)], stdout=subprocess.PIPE, text=True)
        try:
            if proc.stdout is None or proc.stdout.readline().strip() != "lab ready":
                raise SystemExit("lab did not start")
            host = yaml.safe_load(inventory.read_text())["hosts"][0]
            port = int(host["url"].rsplit(":", 1)[1].split("/")[0])
            wsman = WSMan("127.0.0.1", port=port, path="wsman", ssl=False, auth="basic", encryption="never",
                          username=host["username"], password=host["password"])
            best = float("inf")
            with RunspacePool(wsman) as pool:
                for run in range(3):
                    ps = PowerShell(pool).add_cmdlet("Get-VMNetworkAdapter").add_parameters(
                        {"VMName": "*", "Name": "Network Adapter"})
                    started = time.perf_counter()
                    out = ps.invoke()
                    seconds = time.perf_counter() - started
                    assert len(out) == COUNT and not ps.had_errors, (len(out), ps.streams.error)
                    print(f"end to end run {run + 1}: {len(out)} adapters in {seconds:.3f} s")
                    best = min(best, seconds)
            return best
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def main() -> None:
    slow, fast, data = server_side()
    print(f"server-side speed-up: {slow / fast:.1f}x")
    client, _ = timed("pypsrp deserialize of the same objects", lambda: [Serializer().deserialize(d.decode())
                                                                        for d in data])
    e2e = end_to_end()
    print(f"RESULT psrpcore_s={slow:.3f} fast_s={fast:.3f} pypsrp_deserialize_s={client:.3f} end_to_end_s={e2e:.3f}")


if __name__ == "__main__":
    main()
