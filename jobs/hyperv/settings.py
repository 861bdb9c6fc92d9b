"""Worker-side settings: where the inventory is, call deadlines and fan-out width (env prefix HVBOT_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class JobSettings(BaseSettings):
    """Defaults live here, in one place; every field can be set as ``HVBOT_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="HVBOT_", extra="ignore", hide_input_in_errors=True)

    inventory: Path | None = Field(default=None, description="YAML inventory file (HVBOT_INVENTORY)")
    deadline_s: float = Field(default=10.0, gt=0, description="overall deadline of one host call")
    fanout_concurrency: int = Field(default=100, ge=1, le=1000, description="hosts called at the same time (threads; the work is I/O-bound on real networks)")
    operation_timeout_s: int = Field(default=5, ge=1, description="WSMan OperationTimeout of one Receive")
    connection_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=8.0, gt=0, description="must stay above operation_timeout_s")
    reconnection_retries: int = Field(default=1, ge=0)
    reconnection_backoff_s: float = Field(default=0.1, ge=0)
