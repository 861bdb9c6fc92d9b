"""Site failover benchmark: a whole site's VMs on many replica hosts, with latency on every exchange.

The lab runs as ``--shards`` processes of the generated fleet (hosts alternate site-a / site-b and replicate to
their pair, so each shard holds whole pairs); every host gets ``--latency`` per HTTP exchange; site A then loses
power. Measured here:

- ``preview_s``: ``/hyperv failover --site site-a unplanned``'s work on a cold fleet (sessions not yet open):
  resolving the site's VMs from the replica hosts and the preview of every VM (batched reads per host).

Each phase adds its figures to ``figures``; the last line is machine-readable:

    RESULT vms=<int> hosts=<int> preview_s=<float>
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `./dev bench` runs each script as a file

from bench.fanout import control, start_lab, wait_for  # noqa: E402
from jobs.gc_tuning import tune_gc  # noqa: E402
from jobs.hyperv.fleet import Fleet  # noqa: E402
from jobs.hyperv.hosts import Inventory, load_inventory  # noqa: E402
from jobs.hyperv.settings import JobSettings  # noqa: E402
from jobs.recovery.model import ResolvedPlan, Scope, ScopeKind  # noqa: E402
from jobs.recovery.preview import preview_plan  # noqa: E402
from jobs.recovery.preview_tasks import resolve_scope  # noqa: E402

SITE = "site-a"
REPLICATED_SLOTS = 9  # of every 11 generated VMs, 9 replicate (lab.fleet_file.NOT_REPLICATED holds the other 2)


def vms_per_host_for(replicated: int) -> int:
    """Generated VMs per host so that ``replicated`` of them replicate (slots 5 and 10 of each 11 stay local)."""
    full, rest = divmod(replicated, REPLICATED_SLOTS)
    return full * 11 + rest + (1 if rest > 5 else 0)


def shards_of_pairs(hosts: int, shards: int) -> list[tuple[int, int]]:
    """(first host, host count) per lab process, whole replica pairs in each."""
    pairs = hosts // 2
    shards = max(1, min(shards, pairs))
    size, extra = divmod(pairs, shards)
    out, first = [], 0
    for i in range(shards):
        count = 2 * (size + (1 if i < extra else 0))
        out.append((first, count))
        first += count
    return out


def measure_preview(inventory: Inventory, figures: dict[str, Any]) -> tuple[ResolvedPlan, dict[str, Any]]:
    settings = JobSettings(deadline_s=60, fanout_concurrency=max(1, len(inventory.hosts)))
    with Fleet(inventory, settings) as fleet:
        started = time.perf_counter()
        plan = resolve_scope(fleet, Scope(ScopeKind.SITE, SITE))
        data = preview_plan(fleet, plan, "unplanned")
        figures["preview_s"] = f"{time.perf_counter() - started:.3f}"
        started = time.perf_counter()
        preview_plan(fleet, plan, "unplanned")
        warm = time.perf_counter() - started
    totals = data["totals"]
    figures["vms"] = totals["vms"]
    figures["hosts"] = len(totals["replica_hosts"])
    print(f"preview of {totals['vms']} VMs on {len(totals['replica_hosts'])} replica hosts: {figures['preview_s']} s "
          f"cold (resolve + preview), {warm:.3f} s warm; {totals['ready']} ready, {totals['refused']} refused; "
          f"recommended: {(data['recommendation'] or {}).get('kind')}")
    if totals["refused"] or totals["vms"] == 0:
        raise SystemExit(f"unexpected preview: {totals}")
    return plan, data


def run(paths: list[Path], args: argparse.Namespace) -> dict[str, Any]:
    parts = [load_inventory(p) for p in paths]
    inventory = Inventory(hosts=tuple(h for part in parts for h in part.hosts))
    for part in parts:
        if not part.lab_control_url:
            raise SystemExit("a lab inventory has no lab.control_url")
        for host in part.hosts:
            control(part.lab_control_url, {"host": host.name, "action": "latency", "seconds": args.latency})
            if host.site == SITE:
                control(part.lab_control_url, {"host": host.name, "action": "power_loss"})
    figures: dict[str, Any] = {}
    print(f"{len(inventory.hosts)} hosts ({SITE} dark), {args.latency * 1000:.0f} ms per exchange, "
          f"lab in {len(paths)} processes")
    measure_preview(inventory, figures)
    return figures


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))  # dark hosts: expected
    tune_gc()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=200, help="replicated VMs of the site that goes dark")
    parser.add_argument("--replica-hosts", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--shards", type=int, default=4, help="lab processes")
    args = parser.parse_args()
    if args.vms % args.replica_hosts:
        raise SystemExit("--vms must be a multiple of --replica-hosts (each primary host pairs with one replica)")
    hosts = 2 * args.replica_hosts
    per_host = vms_per_host_for(args.vms // args.replica_hosts)
    with tempfile.TemporaryDirectory(prefix="hvbot-bench-") as tmp:
        shards = shards_of_pairs(hosts, args.shards)
        paths = [Path(tmp) / f"inventory-{i}.yml" for i in range(len(shards))]
        procs = [start_lab(count, per_host, first, path) for (first, count), path in zip(shards, paths)]
        try:
            wait_for(procs, paths)
            figures = run(paths, args)
        finally:
            for proc in procs:
                os.killpg(proc.pid, signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=30)
    order = ["vms", "hosts", "preview_s"]
    print("RESULT " + " ".join(f"{k}={figures[k]}" for k in order + [k for k in figures if k not in order]))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
