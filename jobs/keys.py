"""Every Redis key and stream name hvbot uses, in one place.

The values are stored data: changing one orphans what is already in Redis, so they never change in a refactor.
Templates take ``.format(id)``. A store that keeps a family of keys under a namespace (the alert engine, backup
windows, channel pacing) takes the namespace here and documents its own layout beneath it; tests give it another.
"""

from __future__ import annotations

AUDIT_STREAM = "hvbot:audit"  # jobs.audit.AuditEntry fields; approvals add approval_id

# -- every job -------------------------------------------------------------------------------------------------
ALIVE_KEY = "hvbot:alive:{}"  # job id -> pid, refreshed while the job runs (jobs.liveness.heartbeat)
FINAL_KEY = "hvbot:final:{}"  # job id: set once, when the request's final message has been claimed

# -- requests from Slack ---------------------------------------------------------------------------------------
REPLAY_KEY = "hvbot:replay:{}"  # request signature (hex) -> set once (SET NX) for the 5-minute signature window

# -- answers to requests (written by the chat side's reporter) ------------------------------------------------
MESSAGE_KEY = "hvbot:msg:{}"  # job id -> {"channel", "ts"} of its channel message
RESULT_KEY = "hvbot:result:{}"  # job id -> {"command", "reply", "report"} for paging and CSV

# -- failover: approvals and VM locks live under a prefix (tests may pass another) -----------------------------
PREFIX = "hvbot:"


def approval_key(approval_id: str, prefix: str = PREFIX) -> str:
    """Hash: one approval request (jobs.failover.approvals.Approval fields)."""
    return f"{prefix}approval:{approval_id}"


def approvals_pending_key(prefix: str = PREFIX) -> str:
    """Sorted set: approval id -> expires_at of requests waiting for a decision."""
    return f"{prefix}approvals:pending"


def approvals_executing_key(prefix: str = PREFIX) -> str:
    """Set: approval ids whose execution started and has not finished."""
    return f"{prefix}approvals:executing"


def vm_lock_key(vm: str, prefix: str = PREFIX) -> str:
    """String: the token of whoever runs an operation on the VM (jobs.locks.VmLock)."""
    return f"{prefix}lock:vm:{vm}"


BUTTON_USED_KEY = "hvbot:button:used:{}"  # one-use button token -> who spent it (until the token expires)

FAILOVER_RUNS_KEY = "hvbot:failover:running"  # hash approval id -> JSON {job_id, vm, primary, replica, card, started}
FAILOVER_PREVIEW_KEY = "hvbot:failover:preview:{}"  # preview id (or "a:<approval id>") -> the preview's JSON
FAILOVER_PROGRESS_KEY = "hvbot:failover:progress:{}"  # approval id -> list of the steps done (JSON)

# -- recovery plans: site / host / plan failovers (jobs.recovery) --------------------------------------------------
RECOVERY_RUNS_KEY = "hvbot:recovery:running"  # hash run id (approval id) -> JSON {job_id, started}
RECOVERY_RUN_KEY = "hvbot:recovery:run:{}"  # hash of one run: "meta" JSON, "v" version, "vm:<replica>/<vm>" JSON

# -- backup and export -----------------------------------------------------------------------------------------
BACKUP_PREFIX = "hvbot:backup"  # jobs.backup.window.WindowStore: <p>:window:<vm>, <p>:due, <p>:lease:<vm>
BACKUP_PENDING_KEY = "hvbot:backup:pending:{}"  # request id -> a confirmed-by-click request waiting for Run
BACKUP_ALERT_KEY = "hvbot:backup:alert:{}"  # vm -> the on-call alert of a resume that keeps failing
BACKUP_WINDOW_MESSAGE_KEY = "hvbot:backup:winmsg:{}"  # vm -> {"key", "reply", "start_job"}: the window's one message
EXPORT_CANCEL_KEY = "hvbot:export:cancel:{}"  # export key -> the user who pressed Cancel

# -- replica monitor -------------------------------------------------------------------------------------------
MONITOR_LEASE_KEY = "hvbot:monitor:lease"  # the one running monitor's token
MONITOR_HEARTBEAT_KEY = "hvbot:monitor:heartbeat"  # JSON jobs.monitor.heartbeat.Heartbeat, written every round
REPLICATION_LAST_KEY = "hvbot:replication:last"  # hash host -> {"at", "site", "error", "vms": [...]} of the last sweep
SWEEP_PENDING_KEY = "hvbot:sweep:pending:{}"  # host: set while its sweep is queued or running (no pile-up)
ALERTS_PREFIX = "hvbot:alerts"  # jobs.monitor.state.AlertEngine: its layout is in that module's docstring
PACE_PREFIX = "hvbot:pace"  # per-channel Slack write slots: <prefix>:<channel>

# -- site, host and plan failover (recovery) -------------------------------------------------------------------
RECOVERY_PREVIEW_KEY = "hvbot:recovery:preview:{}"  # preview id (or "a:<approval id>") -> the recovery preview's JSON
# -- failover drills (jobs.recovery.drill_store) ---------------------------------------------------------------
DRILL_RUNS_KEY = "hvbot:drill:running"  # hash drill id -> JSON {job_id, target, plan, vms, reply, trigger, started}
DRILL_VMS_KEY = "hvbot:drill:vms:{}"  # drill id -> hash vm -> JSON {state, replica, ...}: what cleanup must undo
DRILL_CLEANUP_LEASE_KEY = "hvbot:drill:cleanup:{}"  # drill id: held while one process cleans up a dead drill
DRILL_LAST_KEY = "hvbot:drill:last"  # hash "vm:<name>" | "plan:<name>" -> JSON of the last successful drill
DRILL_LAST_INDEX_KEY = "hvbot:drill:last:index"  # sorted set of DRILL_LAST_KEY fields by time (keeps it bounded)
DRILL_SCHEDULES_KEY = "hvbot:drill:schedules"  # hash plan -> JSON schedule set from chat (every_s, at, by, ...)
DRILL_DUE_KEY = "hvbot:drill:due:{}:{}"  # plan, due epoch: claimed once by whoever starts that scheduled drill
DRILL_NOTICE_KEY = "hvbot:drill:notice:{}"  # notice id: set once per period (untested plan, failed cleanup)

# -- App Home and replication history (charts) -------------------------------------------------------------------
HOME_RECENT_KEY = "hvbot:home:recent"  # sorted set user id -> when they last opened App Home (capped, see bot)
HOME_PUBLISHED_KEY = "hvbot:home:published"  # digest of the sweep time and pending approvals last shown on Home
SWEEP_STORED_KEY = "hvbot:sweep:stored"  # epoch seconds of the newest sweep result stored (any host)
HISTORY_VM_KEY = "hvbot:history:vm:{}:{}"  # host, vm (lower case) -> stream of lag/health samples (24 h)
HISTORY_HOST_KEY = "hvbot:history:host:{}"  # host -> stream of health counts (7 days)
HISTORY_SLOT_KEY = "hvbot:history:slot:{}"  # host -> the 5-minute slot whose samples are written (claimed)
