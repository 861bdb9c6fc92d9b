"""Settings of recovery plans (env prefix HVBOT_RECOVERY_), kept apart from JobSettings so the feature's knobs live
in one place."""

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
