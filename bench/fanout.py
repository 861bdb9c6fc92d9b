"""Fan-out benchmark: the IP listing on 1 host, on N hosts at once, and N hosts one after another.

The lab runs as ``--shards`` separate processes (`hvbot lab --hosts N/K --first-host i*N/K ...`, one
inventory each, merged here) so neither its CPU nor ours shares a GIL with the other, and one lab process
is not the bottleneck; every host gets 200 ms of added latency per HTTP exchange through its shard's
control endpoint. Prints figures; the last line is machine-readable:

    RESULT one_host_s=<float> fleet_s=<float> sequential_s=<float> hosts=<int> exchanges_per_op=<float>
           client_cpu_ms_per_host=<float> lab_cpu_ms_per_host=<float> cpu_floor_s=<float> gil_floor_s=<float>

The CPU figures are of the fleet-wide call (median run): this process's CPU (all its threads, user + system) and
the lab processes' CPU, per host. `cpu_floor_s` is the fleet time the machine's cores could at best give with that
much CPU: one host's time plus all CPU spread over every core. When it is above the target, no client-side
design on this machine (threads, processes, sub-jobs) can meet the target: only less CPU per host can.
`gil_floor_s` is one host's time plus this process's CPU: the best one client process can do, since its Python
runs on one core at a time; spreading the hosts over processes (sub-jobs) can only gain where this floor is the
higher one. `--no-sequential` leaves out the hosts-in-turn figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import structlog
from measure.cpu import cores as core_count
from measure.cpu import own_cpu_s, processes_cpu_s

from jobs.gc_tuning import tune_gc
from jobs.hyperv.commands import single
from jobs.hyperv.fleet import Fleet
from jobs.hyperv.hosts import Inventory, load_inventory
from jobs.hyperv.settings import JobSettings
from jobs.inventory.queries import find_ips


def start_lab(hosts: int, vms: int, first: int, inventory: Path) -> subprocess.Popen[bytes]:
    hvbot = Path(sys.executable).with_name("hvbot")
    cmd = [str(hvbot), "lab", "--hosts", str(hosts), "--vms-per-host", str(vms), "--first-host", str(first),
           "--write-inventory", str(inventory)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def wait_for(procs: list[subprocess.Popen[bytes]], inventories: list[Path]) -> None:
    deadline = time.monotonic() + 180
    while not all(p.exists() for p in inventories):
        for proc in procs:
            if proc.poll() is not None:
                assert proc.stderr is not None
                raise SystemExit(f"hvbot lab exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            raise SystemExit("hvbot lab did not write its inventory within 180 s")
        time.sleep(0.1)  # a benchmark script, not a test: polling files the subprocesses write


def shards_of(hosts: int, shards: int) -> list[tuple[int, int]]:
    """(first host, host count) of each lab process."""
    shards = max(1, min(shards, hosts))
    size, extra = divmod(hosts, shards)
    out, first = [], 0
    for i in range(shards):
        count = size + (1 if i < extra else 0)
        out.append((first, count))
        first += count
    return out


def control(url: str, payload: dict[str, object]) -> None:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


def timed(fn, repeat: int = 1) -> float:  # type: ignore[no-untyped-def]
    return profiled(fn, [], repeat)[0]


def profiled(fn, labs: list[int], repeat: int = 1) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    """Median (wall seconds, own CPU seconds, lab CPU seconds) over `repeat` runs, ordered by wall time."""
    runs = []
    for _ in range(repeat):
        own, lab, started = own_cpu_s(), processes_cpu_s(labs), time.perf_counter()
        fn()
        runs.append((time.perf_counter() - started, own_cpu_s() - own, processes_cpu_s(labs) - lab))
    return sorted(runs)[len(runs) // 2]


def checked(report):  # type: ignore[no-untyped-def]
    if report.errors:
        raise SystemExit(f"errors during the benchmark: {report.errors[:3]}")
    return report


def main() -> None:
    # Per-call info logs would be 200 lines per fleet call on stdout; warnings (failures) still show.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    tune_gc()  # as every `hvbot` process does (bot/cli/__init__.py): this process is the client side of the fan-out
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--vms-per-host", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--shards", type=int, default=4, help="lab processes")
    parser.add_argument("--repeat", type=int, default=3, help="fleet-wide calls timed (the median is printed)")
    parser.add_argument("--no-sequential", dest="sequential", action="store_false",
                        help="skip the hosts-in-turn figure (0.6 s per host: five minutes at 500 hosts)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hvbot-bench-") as tmp:
        shards = shards_of(args.hosts, args.shards)
        paths = [Path(tmp) / f"inventory-{i}.yml" for i in range(len(shards))]
        procs = [start_lab(count, args.vms_per_host, first, path) for (first, count), path in zip(shards, paths)]
        try:
            wait_for(procs, paths)
            run(paths, args, [p.pid for p in procs])
        finally:
            for proc in procs:
                os.killpg(proc.pid, signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=30)


def run(paths: list[Path], args: argparse.Namespace, labs: list[int]) -> None:
    parts = [load_inventory(p) for p in paths]
    for part in parts:
        if not part.lab_control_url:
            raise SystemExit("a lab inventory has no lab.control_url")
        for name in part.names:
            control(part.lab_control_url, {"host": name, "action": "latency", "seconds": args.latency})
    inventory = Inventory(hosts=tuple(h for part in parts for h in part.hosts))
    settings = JobSettings(deadline_s=60, fanout_concurrency=max(1, len(inventory.hosts)))
    with Fleet(inventory, settings) as fleet:
        first = fleet.hosts[0]
        checked(find_ips(fleet))  # warm every session (pools open) so all figures are warm calls
        one = timed(lambda: checked(find_ips(fleet, host=first)), repeat=3)
        whole, client_cpu, lab_cpu = profiled(lambda: checked(find_ips(fleet)), labs, repeat=args.repeat)
        rows = len(find_ips(fleet).rows)
        sequential = timed(lambda: [checked(find_ips(fleet, host=h)) for h in fleet.hosts]) if args.sequential else None
        session = fleet.session(first)
        session.settle()  # a finished pipeline's close (Signal) is sent after the call returns: count it
        before, ops = session.exchanges, 20
        for _ in range(ops):
            fleet.run(first, single("Get-VM"))
        session.settle()
        per_op = (session.exchanges - before) / ops
    hosts = len(inventory.hosts)
    cores = core_count()
    floor = one + (client_cpu + lab_cpu) / cores
    gil_floor = one + client_cpu  # one process runs Python on one core at a time
    print(f"hosts={hosts} vms/host={args.vms_per_host} added latency={args.latency * 1000:.0f} ms per exchange, "
          f"lab in {len(paths)} processes, fan-out threads={settings.fanout_concurrency}")
    print(f"IP listing, 1 host:            {one:7.3f} s")
    print(f"IP listing, {hosts} hosts at once: {whole:7.3f} s  ({rows} rows; target <= 2 x one host)")
    if sequential is not None:
        print(f"IP listing, {hosts} hosts in turn: {sequential:7.3f} s")
    print(f"HTTP exchanges per warm single-cmdlet call (Get-VM): {per_op:.2f} (target <= 3)")
    print(f"CPU of the fleet-wide call: this process {client_cpu:.2f} s ({1000 * client_cpu / hosts:.1f} ms per host), "
          f"the lab {lab_cpu:.2f} s ({1000 * lab_cpu / hosts:.1f} ms per host); on {cores} cores the fleet time "
          f"cannot go below {floor:.2f} s, nor below {gil_floor:.2f} s in one client process (its GIL). "
          f"Load average now: {os.getloadavg()[0]:.2f}")
    in_turn = f" sequential_s={sequential:.3f}" if sequential is not None else ""
    print(f"RESULT one_host_s={one:.3f} fleet_s={whole:.3f}{in_turn} hosts={hosts} "
          f"exchanges_per_op={per_op:.2f} client_cpu_ms_per_host={1000 * client_cpu / hosts:.1f} "
          f"lab_cpu_ms_per_host={1000 * lab_cpu / hosts:.1f} cpu_floor_s={floor:.2f} gil_floor_s={gil_floor:.2f}")


if __name__ == "__main__":
    main()
