"""Settings of Replica-VM backups and checkpoint export (env prefix HVBOT_BACKUP_), kept apart from JobSettings
so the feature's knobs live in one place."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobs.backup.retry import RetryPolicy
from jobs.backup.window import PauseSide, WindowConfig


class BackupSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HVBOT_BACKUP_", extra="ignore", hide_input_in_errors=True)

    pause_side: PauseSide = Field(default=PauseSide.PRIMARY, description="where a backup window pauses (§1.8)")
    retry_attempts: int = Field(default=5, ge=1, le=50)
    retry_first_delay_s: float = Field(default=30.0, gt=0)
    retry_max_delay_s: float = Field(default=600.0, gt=0)
    resume_verify_s: float = Field(default=60.0, gt=0,
                                   description="bound for a new replication to arrive after resume")
    reset_statistics_after_resume: bool = Field(
        default=True, description="Reset-VMReplicationStatistics when the pause's missed cycles keep health Warning")
    resume_poll_s: float = Field(default=2.0, gt=0)
    alert_after_failures: int = Field(default=3, ge=1)
    resume_first_delay_s: float = Field(default=30.0, gt=0)
    oncall_channel: str = Field(default="", description="channel for resume-failure alerts")
    report_channel: str = Field(default="", description="channel the `hvbot backup` CLI reports to")
    export_timeout_s: int = Field(default=4 * 3600, ge=60, description="RQ job_timeout of an export")
    export_update_s: float = Field(default=10.0, ge=0, description="at most one progress update this often")
    export_poll_s: float = Field(default=1.0, gt=0, description="Receive timeout while polling an export")

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.retry_attempts, first_delay_s=self.retry_first_delay_s,
                           max_delay_s=self.retry_max_delay_s)

    def window_config(self) -> WindowConfig:
        return WindowConfig(pause_side=self.pause_side, alert_after_failures=self.alert_after_failures,
                            resume_first_delay_s=self.resume_first_delay_s)
