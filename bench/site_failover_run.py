"""Site failover benchmark, the run: an approved unplanned failover of a dark site's VMs, group by group.

The lab runs as ``--shards`` processes of the generated fleet (hosts alternate site-a / site-b and replicate to
their pair); every host gets ``--latency`` per HTTP exchange; site A loses power. The plan (built here from the
generated names, as the preview would resolve it) has three groups: 10% core, 30% middle tier, the rest, each
waiting for its VMs' heartbeats. The run goes through ``jobs.recovery.execute`` with its progress in Redis
(REDIS_URL) and the live card through the real Slack reporter against the fake Slack Web API, paced at one write
per second per channel. Measured: ``run_s`` (the plan), each group's time and the part of it spent waiting for
heartbeats, and the card's Slack writes (total and the most in any one second). The last line:

    RESULT vms=<int> hosts=<int> run_s=<float> slack_writes=<int> heartbeat_s=<float> max_writes_per_s=<int>

``heartbeat_s`` sums, over groups, the group's heartbeat phase (from its last VM's steps to its last healthy
heartbeat). The target is run_s <= 1.5 x that sum once the lab boots guests with realistic times; a lab whose
heartbeat is OK at once makes it ~0, and run_s is then the failover steps' own time (each VM's checked steps, on a
host session that serves one call at a time).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

import redis
import structlog
from slack_sdk import WebClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `./dev bench` runs each script as a file

from bench.fanout import control, start_lab, wait_for
from bot.adapters.fake_slack import FakeSlack
from bot.delivery.recovery_run import RecoveryRunReporter
from bot.settings import Settings
from jobs.audit import AuditLog
from jobs.failover.plan import Kind
from jobs.gc_tuning import tune_gc
from jobs.hyperv.fleet import Fleet
from jobs.hyperv.hosts import Inventory, load_inventory
from jobs.hyperv.settings import JobSettings
from jobs.recovery.execute import Recovery, run_plan
from jobs.recovery.locks import RunLocks
from jobs.recovery.model import Member, PlanGroup, ResolvedGroup, ResolvedPlan, Scope, ScopeKind
from jobs.recovery.progress import RunProgress
from jobs.recovery.tasks import refreshing_card
from lab.fleet_file import NOT_REPLICATED, ROLES

SITE, CHANNEL, RUN_ID = "site-a", "C0BENCH", "bench-run"


def vms_per_host_for(replicated: int) -> int:
    """Generated VMs per host so that ``replicated`` of them replicate (2 of every 11 slots stay local)."""
    per_cycle = len(ROLES) - len(NOT_REPLICATED)
    full, rest = divmod(replicated, per_cycle)
    extra = sum(1 for slot in range(len(ROLES)) if slot in NOT_REPLICATED and slot < rest + 1) if rest else 0
    return full * len(ROLES) + rest + extra


def site_plan(pairs: int, per_host: int, want: int) -> ResolvedPlan:
    """The replicated VMs of site A's hosts (even numbers) in three groups, as lab.fleet_file generates them."""
    members = [Member(f"vm-{hi:03d}-{j:04d}", f"hv-{hi:03d}", f"hv-{hi + 1:03d}")
               for hi in range(0, 2 * pairs, 2) for j in range(per_host) if j % len(ROLES) not in NOT_REPLICATED]
    members = members[:want]
    cuts = [0, len(members) // 10, len(members) * 4 // 10, len(members)]
    groups = []
    for name, (a, b) in zip(("core", "middle", "apps"), pairwise(cuts), strict=True):
        chosen = tuple(members[a:b])
        groups.append(ResolvedGroup(name, PlanGroup(name, tuple(m.vm for m in chosen), timeout_s=1800), chosen))
    return ResolvedPlan(Scope(ScopeKind.SITE, SITE), "", tuple(groups))


def shards_of_pairs(hosts: int, shards: int) -> list[tuple[int, int]]:
    pairs = hosts // 2
    shards = max(1, min(shards, pairs))
    size, extra = divmod(pairs, shards)
    out, first = [], 0
    for i in range(shards):
        count = 2 * (size + (1 if i < extra else 0))
        out.append((first, count))
        first += count
    return out


def measure_run(inventory: Inventory, plan: ResolvedPlan, per_host: int, figures: dict[str, Any]) -> None:
    conn = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"))
    with FakeSlack() as fake:
        settings = Settings(slack_bot_token="xoxb-bench", channel_post_interval_seconds=1.0)  # type: ignore[call-arg]
        client = WebClient(token="xoxb-bench", base_url=fake.api_url)
        card = {"channel": CHANNEL, "ts": str(client.chat_postMessage(channel=CHANNEL, text="approved")["ts"])}
        reporter = RecoveryRunReporter(settings, conn, client, AuditLog(conn))
        progress = RunProgress(conn, RUN_ID)
        progress.create(plan, {"kind": "unplanned", "card": card, "scope": {"kind": "site", "value": SITE}})
        job_settings = JobSettings(deadline_s=120, fanout_concurrency=max(1, len(inventory.hosts)))
        with Fleet(inventory, job_settings) as fleet, RunLocks(conn, RUN_ID, 30_000) as locks:
            started = time.perf_counter()
            with refreshing_card(progress, card, reporter, 1.0):
                summary = run_plan(Recovery(fleet, plan, Kind.UNPLANNED, progress, locks, per_host=per_host,
                                            heartbeat_poll_s=0.5))
            figures["run_s"] = f"{time.perf_counter() - started:.2f}"
        writes = [c for c in fake.calls if c.method in ("chat.update", "chat.postMessage")
                  and c.args.get("channel") == CHANNEL][1:]  # the approval card itself is not the run's
        per_second = Counter(int(c.at) for c in writes)
    snap = progress.snapshot()["vms"]
    beats = 0.0
    for group in summary["groups"]:  # the group's heartbeat phase: from its last VM's steps to its last heartbeat
        done = [v for v in snap if v["group"] == group["name"] and v["state"] == "done" and v.get("booted")]
        if done:
            beats += max(v["ended"] for v in done) - max(v["booted"] for v in done)
    figures.update(slack_writes=len(writes), max_writes_per_s=max(per_second.values(), default=0),
                   heartbeat_s=f"{beats:.2f}", done=summary["done"], failed=summary["failed"])
    print("groups: " + ", ".join(f"{g['name']} {g['seconds']} s ({g['ok']} ok, {g['failed']} failed)"
                                 for g in summary["groups"]))
    conn.delete(progress.key)


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))  # dark hosts: expected
    tune_gc()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=200, help="replicated VMs of the site that goes dark")
    parser.add_argument("--replica-hosts", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--shards", type=int, default=4, help="lab processes")
    parser.add_argument("--per-host", type=int, default=4, help="HVBOT_RECOVERY_PER_HOST_PARALLEL")
    args = parser.parse_args()
    if args.vms % args.replica_hosts:
        raise SystemExit("--vms must be a multiple of --replica-hosts (each primary host pairs with one replica)")
    per_host = vms_per_host_for(args.vms // args.replica_hosts)
    with tempfile.TemporaryDirectory(prefix="hvbot-bench-") as tmp:
        shards = shards_of_pairs(2 * args.replica_hosts, args.shards)
        paths = [Path(tmp) / f"inventory-{i}.yml" for i in range(len(shards))]
        procs = [start_lab(count, per_host, first, path) for (first, count), path in zip(shards, paths, strict=True)]
        try:
            wait_for(procs, paths)
            parts = [load_inventory(p) for p in paths]
            inventory = Inventory(hosts=tuple(h for part in parts for h in part.hosts))
            for part in parts:
                for host in part.hosts:
                    control(str(part.lab_control_url), {"host": host.name, "action": "latency", "seconds": args.latency})
                    if host.site == SITE:
                        control(str(part.lab_control_url), {"host": host.name, "action": "power_loss"})
            plan = site_plan(args.replica_hosts, per_host, args.vms)
            figures: dict[str, Any] = {"vms": len(plan.vms()), "hosts": len({m.replica_host for m in plan.vms()})}
            print(f"{len(inventory.hosts)} hosts ({SITE} dark), {args.latency * 1000:.0f} ms per exchange, "
                  f"{figures['vms']} VMs on {figures['hosts']} replica hosts, {args.per_host} at a time per host")
            measure_run(inventory, plan, args.per_host, figures)
        finally:
            for proc in procs:
                os.killpg(proc.pid, signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=30)
    order = ["vms", "hosts", "run_s", "slack_writes", "heartbeat_s", "max_writes_per_s"]
    print("RESULT " + " ".join(f"{k}={figures[k]}" for k in order + [k for k in figures if k not in order]))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
