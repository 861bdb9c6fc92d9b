"""Prometheus metrics of what jobs do: job runs, Hyper-V host calls (names prefixed `hvbot_`).

Labels stay bounded: a job's kind is its function's name, a host is an inventory host (the inventory bounds them),
a host call is `open` or `invoke`, an outcome is a fixed word (`ok`, `failed`, `killed`, `stopped`) or a
`jobs.hyperv.errors` kind. No VM names, user IDs or job ids ever become labels.
Only counters and histograms live here: they add up across RQ's forked work horses in prometheus-client's
multiprocess mode (the worker sets it up), which plain gauges would not; gauges are computed at scrape time
by collectors (jobs/state_metrics.py).
"""

from __future__ import annotations

from typing import Literal

from prometheus_client import Counter, Histogram

# Hyper-V calls take from tens of milliseconds (a cached session, one statement) to minutes (an export's wait).
HOST_CALL_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0)
JOB_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0)

# killed: the work horse died without reporting (SIGKILL, the OOM killer, a crash); its worker counts it.
# stopped: stopped by a user while it ran (`/hyperv cancel`: RQ's stop-job command); its worker counts it too.
JobOutcome = Literal["ok", "failed", "killed", "stopped"]
# open: a WinRM shell and its PSRP runspace pool opened; invoke: one invocation, including any open it needed
HostCall = Literal["open", "invoke"]

JOBS = Counter("hvbot_jobs", "Jobs run by workers, by kind (the job function) and outcome (ok, failed, killed, "
               "stopped).",
               ["kind", "outcome"])
JOB_SECONDS = Histogram("hvbot_job_duration_seconds", "Wall time of a job run by kind and outcome.",
                        ["kind", "outcome"], buckets=JOB_BUCKETS)
HOST_CALLS = Counter("hvbot_host_calls", "Hyper-V calls by host, call (open: a session opened; invoke: one "
                     "invocation) and outcome (ok; stopped: its watcher stopped it; or the error kind: unreachable, "
                     "timeout, auth, wsman, powershell, protocol, config).", ["host", "call", "outcome"])
HOST_CALL_SECONDS = Histogram("hvbot_host_call_seconds", "Latency of Hyper-V calls by host and call (open, invoke).",
                              ["host", "call"], buckets=HOST_CALL_BUCKETS)


def job_kind(func_name: str | None) -> str:
    """A job's kind: the last part of its dotted function path (`jobs.inventory.tasks.run_lookup` -> run_lookup)."""
    return (func_name or "unknown").rsplit(".", 1)[-1] or "unknown"


def observe_job(func_name: str | None, outcome: JobOutcome, seconds: float | None) -> None:
    """Count one job run; `seconds` None when its wall time is not known (then only the counter moves)."""
    kind = job_kind(func_name)
    JOBS.labels(kind, outcome).inc()
    if seconds is not None:
        JOB_SECONDS.labels(kind, outcome).observe(seconds)


def observe_host_call(host: str, call: HostCall, outcome: str, seconds: float) -> None:
    HOST_CALLS.labels(host, call, outcome).inc()
    HOST_CALL_SECONDS.labels(host, call).observe(seconds)
