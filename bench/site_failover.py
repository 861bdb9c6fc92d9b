"""Site failover benchmark: preview and run of a whole site's VMs on many replica hosts, latency on every exchange.

The lab runs as ``--shards`` processes of the generated fleet (hosts alternate site-a / site-b and replicate to
their pair, so each shard holds whole pairs); every host gets ``--latency`` per HTTP exchange; every replica VM of
site A gets a realistic boot time (the lab's ``realistic``: 20-60 s from the VM's name, set through its
``heartbeat`` control), so a started guest reports heartbeat only that long after its start; site A then loses
power. On that one fleet:

- ``preview_s``: ``/hyperv failover --site site-a unplanned``'s work on a cold fleet (sessions not yet open):
  resolving the site's VMs from the replica hosts and the preview of every VM (batched reads per host).
- ``run_s``: the approved unplanned failover of the resolved VMs, regrouped into three boot groups (10 % core,
  30 % middle tier, the rest), each waiting for its VMs' heartbeats, through ``jobs.recovery.execute`` with its
  progress in Redis and the live card through the real Slack reporter against the fake Slack Web API, paced at
  one write per second per channel.
- ``heartbeat_s``: per group, the slowest VM's time from the end of its steps (its start) to its healthy
  heartbeat, summed over groups: what the guests themselves cost. Target: ``run_s <= 1.5 x heartbeat_s``.
- ``slack_writes`` / ``max_writes_per_s``: the run card's writes, in total and in the busiest second.
- ``cpu_s``: CPU seconds hvbot's side (this process) spent during the run, to tell its own cost from waiting;
  ``lab_cpu_s``: the lab processes' CPU seconds over their whole life (fleet build, preview and run).

Per group it also prints where the time went: the steps (group start to the last VM's steps done), the
heartbeat wait after them, and the slowest guest's boot. The last line is machine-readable:

    RESULT vms=<int> hosts=<int> preview_s=<float> run_s=<float> slack_writes=<int> heartbeat_s=<float>
    max_writes_per_s=<int> ...
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import signal
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from itertools import pairwise
from pathlib import Path
from typing import Any

import redis
import structlog
from slack_sdk import WebClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `./dev bench` runs each script as a file

from measure.own_redis import use_own_redis  # noqa: E402
from bench.fanout import control, start_lab, wait_for  # noqa: E402
from bot.adapters.fake_slack import FakeSlack  # noqa: E402
from bot.delivery.recovery_run import RecoveryRunReporter  # noqa: E402
from bot.settings import Settings  # noqa: E402
from jobs.audit import AuditLog  # noqa: E402
from jobs.failover.plan import Kind  # noqa: E402
from jobs.gc_tuning import tune_gc  # noqa: E402
from jobs.hyperv.fleet import Fleet  # noqa: E402
from jobs.hyperv.hosts import Inventory, load_inventory  # noqa: E402
from jobs.hyperv.settings import JobSettings  # noqa: E402
from jobs.recovery.execute import Recovery, run_plan  # noqa: E402
from jobs.recovery.locks import RunLocks  # noqa: E402
from jobs.recovery.model import PlanGroup, ResolvedGroup, ResolvedPlan, Scope, ScopeKind  # noqa: E402
from jobs.recovery.preview import preview_plan  # noqa: E402
from jobs.recovery.preview_tasks import resolve_scope  # noqa: E402
from jobs.recovery.progress import RunProgress  # noqa: E402
from jobs.recovery.settings import RecoverySettings  # noqa: E402
from jobs.recovery.tasks import refreshing_card  # noqa: E402
from lab.fleet_file import NOT_REPLICATED, ROLES, boot_seconds  # noqa: E402
from tests.support.private_redis import PrivateRedis  # noqa: E402

SITE, CHANNEL, RUN_ID = "site-a", "C0BENCH", "bench-run"
GROUPS = (("core", 0.1), ("middle", 0.4), ("apps", 1.0))  # boot groups: name, cumulative share of the VMs


def vms_per_host_for(replicated: int) -> int:
    """Generated VMs per host so that ``replicated`` of them replicate (the NOT_REPLICATED slots stay local)."""
    per_cycle = len(ROLES) - len(NOT_REPLICATED)
    full, rest = divmod(replicated, per_cycle)
    count, slot = full * len(ROLES), 0
    while rest:
        rest -= slot not in NOT_REPLICATED
        count, slot = count + 1, slot + 1
    return count


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


def measure_preview(inventory: Inventory, figures: dict[str, Any]) -> ResolvedPlan:
    settings = JobSettings(deadline_s=60, fanout_concurrency=max(1, len(inventory.hosts)))
    with Fleet(inventory, settings) as fleet:
        started = time.perf_counter()
        plan = resolve_scope(fleet, Scope(ScopeKind.SITE, SITE))
        data = preview_plan(fleet, plan, "unplanned")
        figures["preview_s"] = f"{time.perf_counter() - started:.3f}"
    totals = data["totals"]
    figures["vms"], figures["hosts"] = totals["vms"], len(totals["replica_hosts"])
    print(f"preview of {totals['vms']} VMs on {len(totals['replica_hosts'])} replica hosts: {figures['preview_s']} s "
          f"cold (resolve + preview); {totals['ready']} ready, {totals['refused']} refused; "
          f"recommended: {(data['recommendation'] or {}).get('kind')}")
    if totals["refused"] or totals["vms"] == 0:
        raise SystemExit(f"unexpected preview: {totals}")
    return plan


def boot_groups(resolved: ResolvedPlan) -> ResolvedPlan:
    """The previewed VMs in three boot groups, each waiting for its VMs' heartbeats."""
    members = sorted(resolved.vms(), key=lambda m: (m.vm.rsplit("-", 1)[-1], m.vm))  # slot first: hosts interleave
    cuts = [0, *(round(len(members) * share) for _, share in GROUPS)]
    groups = []
    for (name, _), (a, b) in zip(GROUPS, pairwise(cuts), strict=True):
        chosen = tuple(members[a:b])
        groups.append(ResolvedGroup(name, PlanGroup(name, tuple(m.vm for m in chosen), timeout_s=1800), chosen))
    return ResolvedPlan(resolved.scope, "", tuple(groups))


def set_boot_times(urls: dict[str, str], plan: ResolvedPlan) -> dict[str, float]:
    """Each replica VM boots in the lab's realistic time; returns it per VM."""
    boots = {}
    for m in plan.vms():
        boots[m.vm] = boot_seconds("realistic", m.vm)
        control(urls[m.replica_host], {"host": m.replica_host, "vm": m.vm, "action": "heartbeat",
                                       "boot_seconds": boots[m.vm]})
    return boots


def measure_run(conn: redis.Redis, inventory: Inventory, plan: ResolvedPlan, per_host: int,
                boots: dict[str, float], figures: dict[str, Any]) -> None:
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
            epoch = time.time()
            cpu = _cpu()
            with refreshing_card(progress, card, reporter, 1.0):
                summary = run_plan(Recovery(fleet, plan, Kind.UNPLANNED, progress, locks, per_host=per_host,
                                            heartbeat_poll_s=RecoverySettings().heartbeat_poll_s))
            figures["run_s"] = f"{time.perf_counter() - started:.2f}"
            figures["cpu_s"] = f"{_cpu() - cpu:.1f}"
        writes = [c for c in fake.calls if c.method in ("chat.update", "chat.postMessage")
                  and c.args.get("channel") == CHANNEL][1:]  # the approval card itself is not the run's
        per_second = Counter(int(c.at) for c in writes)
    beats = report_groups(summary, progress.snapshot()["vms"], boots, epoch)
    figures.update(slack_writes=len(writes), heartbeat_s=f"{beats:.2f}",
                   max_writes_per_s=max(per_second.values(), default=0), done=summary["done"],
                   failed=summary["failed"], ratio=f"{float(figures['run_s']) / max(beats, 0.01):.2f}")
    conn.delete(progress.key)


def _cpu() -> float:
    """CPU seconds of this process so far (hvbot's side: sessions, reads, progress, card; the lab is elsewhere)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def report_groups(summary: dict[str, Any], snap: list[dict[str, Any]], boots: dict[str, float],
                  epoch: float) -> float:
    """Print each group's steps / heartbeat split; returns the slowest heartbeat per group, summed."""
    total, begin = 0.0, epoch
    for group in summary["groups"]:
        vms = [v for v in snap if v["group"] == group["name"]]
        done = [v for v in vms if v["state"] == "done" and v.get("booted")]
        if not done:
            print(f"  {group['name']}: {group['seconds']} s, no VM done ({group['failed']} failed)")
            begin += group["seconds"]
            continue
        steps = max(v["booted"] for v in done) - begin
        slowest = max(v["ended"] - v["booted"] for v in done)
        wait = max(v["ended"] for v in done) - max(v["booted"] for v in done)
        per_vm = sorted(v["booted"] - v["started"] for v in done)
        total += slowest
        print(f"  {group['name']}: {len(vms)} VMs, {group['seconds']} s = steps {steps:.1f} s (one VM's steps: median "
              f"{per_vm[len(per_vm) // 2]:.2f} s, max {per_vm[-1]:.2f} s) + heartbeat wait {wait:.1f} s after the "
              f"last steps; slowest heartbeat {slowest:.1f} s (lab boot time max "
              f"{max(boots.get(v['vm'], 0.0) for v in done):.0f} s); {group['ok']} ok, {group['failed']} failed")
        begin = max(v["ended"] for v in vms if v.get("ended")) if any(v.get("ended") for v in vms) else begin
    return total


def prepare(paths: list[Path], args: argparse.Namespace) -> tuple[Inventory, dict[str, str]]:
    parts = [load_inventory(p) for p in paths]
    inventory = Inventory(hosts=tuple(h for part in parts for h in part.hosts))
    urls = {}
    for part in parts:
        if not part.lab_control_url:
            raise SystemExit("a lab inventory has no lab.control_url")
        for host in part.hosts:
            urls[host.name] = str(part.lab_control_url)
            control(urls[host.name], {"host": host.name, "action": "latency", "seconds": args.latency})
    return inventory, urls


def run(conn: redis.Redis, paths: list[Path], args: argparse.Namespace) -> dict[str, Any]:
    inventory, urls = prepare(paths, args)
    for host in inventory.hosts:
        if host.site == SITE:
            control(urls[host.name], {"host": host.name, "action": "power_loss"})
    figures: dict[str, Any] = {}
    print(f"{len(inventory.hosts)} hosts ({SITE} dark), {args.latency * 1000:.0f} ms per exchange, "
          f"lab in {len(paths)} processes, {args.per_host} VMs at a time per replica host")
    plan = boot_groups(measure_preview(inventory, figures))
    boots = set_boot_times(urls, plan)
    measure_run(conn, inventory, plan, args.per_host, boots, figures)
    return figures


def main() -> None:
    use_own_redis()
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
    with tempfile.TemporaryDirectory(prefix="hvbot-bench-") as tmp, ExitStack() as stack:
        url = os.environ.get("REDIS_URL")  # `./dev bench` gives every benchmark a private server
        url = url or stack.enter_context(PrivateRedis.start()).url()
        conn = redis.Redis.from_url(url)
        shards = shards_of_pairs(2 * args.replica_hosts, args.shards)
        paths = [Path(tmp) / f"inventory-{i}.yml" for i in range(len(shards))]
        procs = [start_lab(count, per_host, first, path) for (first, count), path in zip(shards, paths, strict=True)]
        try:
            wait_for(procs, paths)
            figures = run(conn, paths, args)
        finally:
            for proc in procs:
                os.killpg(proc.pid, signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=30)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        figures["lab_cpu_s"] = f"{children.ru_utime + children.ru_stime:.1f}"  # whole life: fleet, preview, run
    order = ["vms", "hosts", "preview_s", "run_s", "slack_writes", "heartbeat_s", "max_writes_per_s"]
    print("RESULT " + " ".join(f"{k}={figures[k]}" for k in order + [k for k in figures if k not in order]))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
