"""Fan-out benchmark: the IP listing on 1 host, on N hosts at once, and N hosts one after another.

The lab runs in a separate process (`hvbot lab --hosts N --vms-per-host M --write-inventory PATH`) so
its CPU does not share our GIL; every host gets 200 ms of added latency per HTTP exchange through the
lab's control endpoint. Prints figures; the last line is machine-readable:

    RESULT one_host_s=<float> fleet_s=<float> sequential_s=<float> hosts=<int> exchanges_per_op=<float>
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from jobs.hyperv.commands import single
from jobs.hyperv.fleet import Fleet
from jobs.hyperv.hosts import load_inventory
from jobs.inventory import find_ips
from jobs.settings import JobSettings


def start_lab(hosts: int, vms: int, inventory: Path) -> subprocess.Popen[bytes]:
    hvbot = Path(sys.executable).with_name("hvbot")
    cmd = [str(hvbot), "lab", "--hosts", str(hosts), "--vms-per-host", str(vms), "--write-inventory", str(inventory)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while not inventory.exists():
        if proc.poll() is not None:
            raise SystemExit(f"hvbot lab exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("hvbot lab did not write its inventory within 120 s")
        time.sleep(0.1)  # a benchmark script, not a test: polling a file the subprocess writes
    return proc


def control(url: str, payload: dict[str, object]) -> None:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


def timed(fn, repeat: int = 1) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def checked(report):  # type: ignore[no-untyped-def]
    if report.errors:
        raise SystemExit(f"errors during the benchmark: {report.errors[:3]}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--vms-per-host", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hvbot-bench-") as tmp:
        inventory_path = Path(tmp) / "inventory.yml"
        proc = start_lab(args.hosts, args.vms_per_host, inventory_path)
        try:
            run(inventory_path, args)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def run(inventory_path: Path, args: argparse.Namespace) -> None:
    inventory = load_inventory(inventory_path)
    if not inventory.lab_control_url:
        raise SystemExit("the lab inventory has no lab.control_url")
    for name in inventory.names:
        control(inventory.lab_control_url, {"host": name, "action": "latency", "seconds": args.latency})
    settings = JobSettings(deadline_s=60, fanout_concurrency=max(1, len(inventory.hosts)))
    with Fleet(inventory, settings) as fleet:
        first = fleet.hosts[0]
        checked(find_ips(fleet))  # warm every session (pools open) so all figures are warm calls
        one = timed(lambda: checked(find_ips(fleet, host=first)), repeat=3)
        whole = timed(lambda: checked(find_ips(fleet)), repeat=3)
        rows = len(find_ips(fleet).rows)
        sequential = timed(lambda: [checked(find_ips(fleet, host=h)) for h in fleet.hosts])
        session = fleet.session(first)
        before, ops = session.exchanges, 20
        for _ in range(ops):
            fleet.run(first, single("Get-VM"))
        per_op = (session.exchanges - before) / ops
    hosts = len(inventory.hosts)
    print(f"hosts={hosts} vms/host={args.vms_per_host} added latency={args.latency * 1000:.0f} ms per exchange")
    print(f"IP listing, 1 host:            {one:7.3f} s")
    print(f"IP listing, {hosts} hosts at once: {whole:7.3f} s  ({rows} rows; target <= 2 x one host)")
    print(f"IP listing, {hosts} hosts in turn: {sequential:7.3f} s")
    print(f"HTTP exchanges per warm single-cmdlet call (Get-VM): {per_op:.2f} (target <= 3)")
    print(f"RESULT one_host_s={one:.3f} fleet_s={whole:.3f} sequential_s={sequential:.3f} hosts={hosts} "
          f"exchanges_per_op={per_op:.2f}")


if __name__ == "__main__":
    main()
