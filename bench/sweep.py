"""Replica sweep benchmark: 5,000 VMs over 250 lab hosts (by default), 50 ms per exchange, 2 RQ workers.

The lab runs as `hvbot lab --hosts N --vms-per-host M --first-host K --write-inventory` shards (separate
processes; shards start at even hosts so replication pairs stay together), the workers are `hvbot worker
--simple` processes (sessions stay open between sweeps, as in production), Slack is the fake Web API in this
process, Redis is REDIS_URL's server on database 8 (emptied before and after). Three sweeps through the real
`Monitor`: cold (right after the workers start, while they open their sessions to every host), warm (all
healthy), and a storm (500 VMs turned Critical, then the group-wait tick). Redis commands are the server's
`total_commands_processed` delta (workers, monitor and RQ together). Last line:

    RESULT sweep_s=<float> cold_s=<float> vms=<int> hosts=<int> slack_writes=<int>
           slack_writes_max_per_channel=<int> redis_cmds=<int> redis_cmds_per_vm=<float> cpu_floor_s=<float>

(the warm sweep's time, Redis commands and CPU floor: the CPU of workers, lab, Redis and monitor during it, spread
over every core; the cold sweep's time; the storm's Slack writes, in all and in its busiest channel).
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
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis
import structlog
import yaml
from measure.own_redis import use_own_redis  # noqa: E402
from measure.cpu import cores as core_count
from measure.cpu import own_cpu_s, processes_cpu_s, redis_cpu_s
from rq import Queue
from rq.serializers import JSONSerializer

from bot.adapters.fake_slack import FakeSlack
from bot.delivery.alert_poster import SlackAlertPoster, alert_client
from bot.delivery.pacing import Pacer
from bot.settings import Settings
from jobs.keys import SWEEP_PENDING_KEY
from jobs.monitor.loop import Monitor
from jobs.monitor.rules import AlertRouting, AlertRules
from jobs.monitor.state import AlertEngine

HVBOT = str(Path(sys.executable).with_name("hvbot"))
QUEUE = "hvbot-bench-sweep"
WRITES = ("chat.postMessage", "chat.update", "files.completeUploadExternal")


def redis_url() -> str:
    parts = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    return urlunsplit(parts._replace(path="/8"))


def shards_of(hosts: int, shards: int) -> list[tuple[int, int]]:
    """(first host, count) per lab process; even sizes so a host and its replication partner share a shard."""
    pairs = hosts // 2
    size, extra = divmod(pairs, shards)
    out, first = [], 0
    for i in range(shards):
        count = 2 * (size + (1 if i < extra else 0))
        out.append((first, count))
        first += count
    return [s for s in out if s[1]]


def start_labs(shards: list[tuple[int, int]], vms: int, tmp: Path) -> tuple[list[subprocess.Popen[bytes]], list[Path]]:
    procs, paths = [], []
    for i, (first, count) in enumerate(shards):
        path = tmp / f"inventory-{i}.yml"
        cmd = [HVBOT, "lab", "--hosts", str(count), "--vms-per-host", str(vms), "--first-host", str(first),
               "--write-inventory", str(path)]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True))
        paths.append(path)
    deadline = time.monotonic() + 240
    while not all(p.exists() for p in paths):
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            raise SystemExit("a lab shard did not start")
        time.sleep(0.1)  # a benchmark script: polling for files the lab processes write
    return procs, paths


def merge_inventories(paths: list[Path], out: Path) -> tuple[list[str], list[str]]:
    """One inventory for the workers; returns the host names and each shard's control URL."""
    hosts, controls = [], []
    for path in paths:
        data = yaml.safe_load(path.read_text())
        hosts += data["hosts"]
        controls.append(data["lab"]["control_url"])
    out.write_text(yaml.safe_dump({"hosts": hosts}))
    return [h["name"] for h in hosts], controls


def control(url: str, payload: dict[str, object]) -> None:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


def commands(r: redis.Redis) -> int:
    return int(r.info("stats")["total_commands_processed"])


def wait_sweep(r: redis.Redis, hosts: list[str], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while r.exists(*[SWEEP_PENDING_KEY.format(h) for h in hosts]):
        if time.monotonic() > deadline:
            raise SystemExit("the sweep did not finish in time")
        time.sleep(0.05)  # a benchmark script: the pending keys vanish when each host's job ends


@dataclass(frozen=True)
class Sweep:
    seconds: float
    redis_cmds: int
    cpu_s: dict[str, float]  # workers, lab, redis, monitor (this process): CPU seconds during the sweep


def cpu_now(r: redis.Redis, workers: list[int], labs: list[int]) -> dict[str, float]:
    return {"workers": processes_cpu_s(workers), "lab": processes_cpu_s(labs), "redis": redis_cpu_s(r),
            "monitor": own_cpu_s()}


def timed_sweep(r: redis.Redis, monitor: Monitor, hosts: list[str], now: datetime, pids: tuple[list[int], list[int]]
                ) -> Sweep:
    cpu, before, started = cpu_now(r, *pids), commands(r), time.perf_counter()
    monitor.last_sweep = None
    monitor.run_once(now)
    wait_sweep(r, hosts)
    seconds, cmds = time.perf_counter() - started, commands(r) - before
    return Sweep(seconds, cmds, {k: v - cpu[k] for k, v in cpu_now(r, *pids).items()})


def main() -> None:
    use_own_redis()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--hosts", type=int, default=250)
    parser.add_argument("--vms-per-host", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shards", type=int, default=5)
    parser.add_argument("--hosts-per-job", type=int, default=Settings().sweep_hosts_per_job,
                        help="hosts per sweep job (HVBOT_SWEEP_HOSTS_PER_JOB)")
    args = parser.parse_args()
    r = redis.Redis.from_url(redis_url())
    r.flushdb()
    os.environ.setdefault("HVBOT_APPROVAL_SECRET", "bench-only-approval-secret")  # the approval-expiry chore
    with tempfile.TemporaryDirectory(prefix="hvbot-bench-sweep-") as tmp, FakeSlack() as slack:
        labs, paths = start_labs(shards_of(args.hosts, args.shards), args.vms_per_host, Path(tmp))
        workers: list[subprocess.Popen[bytes]] = []
        try:
            hosts, controls = merge_inventories(paths, Path(tmp) / "inventory.yml")
            for url, path in zip(controls, paths):
                for h in yaml.safe_load(path.read_text())["hosts"]:
                    control(url, {"host": h["name"], "action": "latency", "seconds": args.latency})
            env = {**os.environ, "REDIS_URL": redis_url(), "HVBOT_INVENTORY": str(Path(tmp) / "inventory.yml"),
                   "SLACK_API_URL": slack.api_url, "SLACK_BOT_TOKEN": "xoxb-bench", "HVBOT_QUEUE": QUEUE,
                   "HVBOT_LOG_JSON": "true", "HVBOT_DEADLINE_S": "30"}
            workers = [subprocess.Popen([HVBOT, "worker", "--simple", "--name", f"bench-sweep-{i}-{os.getpid()}"],
                                        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                       for i in range(args.workers)]
            run(r, slack, hosts, controls, paths, args, ([w.pid for w in workers], [p.pid for p in labs]))
        finally:
            for proc in workers:
                proc.send_signal(signal.SIGTERM)
            for proc in labs:
                os.killpg(proc.pid, signal.SIGTERM)
            for proc in [*workers, *labs]:
                proc.wait(timeout=30)
            r.flushdb()


def run(r: redis.Redis, slack: FakeSlack, hosts: list[str], controls: list[str], paths: list[Path],
        args: argparse.Namespace, pids: tuple[list[int], list[int]]) -> None:
    rules = AlertRules(routing=AlertRouting(critical_channel="#oncall", warning_channel="#ops"),
                       coalesce_after_groups=1)
    engine = AlertEngine(r, rules=rules)
    settings = Settings(slack_api_url=slack.api_url, slack_bot_token="xoxb-bench")
    poster = SlackAlertPoster(alert_client(settings), Pacer(r, interval_s=1.0))
    monitor = Monitor(r, Queue(QUEUE, connection=r, serializer=JSONSerializer), hosts, engine, poster.deliver,
                      interval_s=60, hosts_per_job=args.hosts_per_job)
    t0 = datetime.now(UTC)
    cold = timed_sweep(r, monitor, hosts, t0, pids)
    warm = timed_sweep(r, monitor, hosts, t0 + timedelta(seconds=60), pids)
    vms = sum(len(json.loads(v)["vms"]) for v in r.hgetall("hvbot:replication:last").values())
    critical = 0
    for url, path in zip(controls, paths):
        for h in yaml.safe_load(path.read_text())["hosts"][:50]:
            for j in range(args.vms_per_host):
                vm = f"vm-{int(h['name'][3:]):03d}-{j:04d}"
                try:
                    control(url, {"host": h["name"], "action": "replication", "vm": vm, "health": "Critical"})
                except urllib.error.HTTPError:  # a VM of a role the generated fleet does not replicate
                    continue
                critical += 1
                if critical % 10 == 0:
                    break
        if critical >= 500:
            break
    first_call = len(slack.calls)
    storm = timed_sweep(r, monitor, hosts, t0 + timedelta(seconds=120), pids)
    monitor.tick(t0 + timedelta(seconds=150))
    storm_writes = [c for c in slack.calls[first_call:] if c.method in WRITES and c.status == 200]
    per_channel = Counter(str(c.args.get("channel") or c.args.get("channel_id")) for c in storm_writes)
    writes = len(storm_writes)
    vm_count = len(hosts) * args.vms_per_host
    cpu = sum(warm.cpu_s.values())
    floor = cpu / core_count()
    print(f"hosts={len(hosts)} VMs={vm_count} replication objects={vms} latency={args.latency * 1000:.0f} ms/exchange "
          f"workers={args.workers} (simple, warm sessions), {args.hosts_per_job} hosts per sweep job")
    print(f"cold sweep (workers opening sessions): {cold.seconds:7.2f} s")
    print(f"warm sweep (all healthy):      {warm.seconds:7.2f} s  Redis commands {warm.redis_cmds} "
          f"({warm.redis_cmds / vm_count:.2f} per VM)")
    print(f"storm sweep ({critical} Critical):  {storm.seconds:7.2f} s  Redis commands {storm.redis_cmds}, "
          "Slack writes "
          f"during it and after the group wait: {writes} ({dict(per_channel)}; {poster.rate_limited} 429s)")
    print("CPU of the warm sweep: " + ", ".join(f"{k} {v:.1f} s" for k, v in warm.cpu_s.items())
          + f"; on {core_count()} cores it cannot take less than {floor:.1f} s. Load average now: "
          f"{os.getloadavg()[0]:.2f}")
    print(f"RESULT sweep_s={warm.seconds:.3f} cold_s={cold.seconds:.3f} vms={vm_count} hosts={len(hosts)} "
          f"slack_writes={writes} slack_writes_max_per_channel={max(per_channel.values(), default=0)} "
          f"redis_cmds={warm.redis_cmds} redis_cmds_per_vm={warm.redis_cmds / vm_count:.2f} "
          f"cpu_floor_s={floor:.1f}")


if __name__ == "__main__":
    main()
