"""Settings of recovery plans (env prefix HVBOT_RECOVERY_), kept apart from JobSettings so the feature's knobs live
in one place: where the plan files are, and how an approved plan runs (parallelism, polling, card refresh)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# The shipped examples fit the lab's default fleet, so `hvbot demo` has plans without any setting.
SHIPPED_PLANS = Path(__file__).resolve().parents[2] / "deploy" / "recovery-plans"


class RecoverySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HVBOT_RECOVERY_", extra="ignore", hide_input_in_errors=True)

    plans_dir: Path = Field(default=SHIPPED_PLANS,
                            description="directory of recovery plan files, *.yaml / *.yml (HVBOT_RECOVERY_PLANS_DIR)")
    # VMs of one group failing over at the same time on one replica host (its storage and CPU set the pace)
    per_host_parallel: int = Field(default=4, ge=1, le=64)
    heartbeat_poll_s: float = Field(default=1.0, gt=0, le=60)  # how often Get-VM reads heartbeats while waiting
    card_interval_s: float = Field(default=1.0, ge=0.2, le=60)  # live card refresh; Slack allows ~1 update/s
    lock_ttl_ms: int = Field(default=30_000, ge=1000)  # per-VM lock; renewed every third of it while held
    heartbeat_seconds: float = Field(default=5.0, gt=0)  # the job's liveness beat (a dead worker shows in ~3 beats)
