"""hvbot settings: environment, `.env`, and `<NAME>_FILE` secret files (Docker/Kubernetes style)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

IdList = Annotated[list[str], NoDecode]


def _env(*names: str) -> Any:
    return Field(default=None, validation_alias=AliasChoices(*names))


class FileSecretsSource(EnvSettingsSource):
    """`SLACK_BOT_TOKEN_FILE=/run/secrets/bot` fills SLACK_BOT_TOKEN from that file (pydantic has no such source)."""

    def __call__(self) -> dict[str, Any]:
        try:
            return super().__call__()
        except SettingsError as exc:  # keep our one clear sentence instead of pydantic-settings' wrapper
            raise SettingsError(str(exc.__cause__ or exc)) from None

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        for env_name in _env_names(field, field_name):
            path = os.environ.get(f"{env_name}_FILE")
            if path:
                try:
                    return Path(path).read_text(encoding="utf-8").strip(), field_name, False
                except OSError as exc:
                    raise ValueError(f"{env_name}_FILE points to an unreadable file: {exc.strerror}") from None
        return None, field_name, False


def _env_names(field: FieldInfo, field_name: str) -> list[str]:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    return [f"HVBOT_{field_name.upper()}"]


class Settings(BaseSettings):
    """Everything hvbot reads from its environment. Secrets are SecretStr: never printed, never logged."""

    # hide_input_in_errors: a value that fails validation may be a secret set in the wrong variable
    model_config = SettingsConfigDict(
        env_prefix="HVBOT_", env_file=".env", extra="ignore", env_ignore_empty=True, populate_by_name=True,
        hide_input_in_errors=True,
    )

    slack_bot_token: SecretStr | None = _env("SLACK_BOT_TOKEN", "slack_bot_token")
    slack_signing_secret: SecretStr | None = _env("SLACK_SIGNING_SECRET", "slack_signing_secret")
    slack_app_token: SecretStr | None = _env("SLACK_APP_TOKEN", "slack_app_token")
    slack_api_url: str = Field(
        default="https://slack.com/api/", validation_alias=AliasChoices("SLACK_API_URL", "slack_api_url")
    )
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0", validation_alias=AliasChoices("REDIS_URL", "redis_url")
    )
    # Redis Sentinel (HA): when sentinels are set, the master is asked of them and REDIS_URL is not used.
    redis_sentinels: IdList = Field(default_factory=list)  # HVBOT_REDIS_SENTINELS=host1:26379,host2:26379
    redis_master_name: str = "hvbot"  # the name the sentinels monitor (`sentinel monitor NAME ...`)
    redis_db: int = Field(default=0, ge=0)  # with sentinels only; a REDIS_URL carries its own db
    redis_username: str | None = None
    redis_password: SecretStr | None = None  # overrides a password in REDIS_URL
    redis_sentinel_username: str | None = None
    redis_sentinel_password: SecretStr | None = None  # `requirepass` of the sentinels, if any
    redis_tls: bool = False  # TLS to Redis and the sentinels (a rediss:// REDIS_URL turns it on too)
    redis_tls_ca_file: Path | None = None
    redis_tls_cert_file: Path | None = None  # client certificate, when Redis asks for one (tls-auth-clients)
    redis_tls_key_file: Path | None = None
    redis_tls_verify: bool = True  # false: encrypt without checking the server's certificate (tests only)
    inventory: Path | None = None  # HVBOT_INVENTORY: the inventory YAML (hosts, credentials reference)

    # Roles: Slack user IDs (U…/W…) and user-group IDs (S…), comma-separated. Hierarchy viewer < operator < approver.
    viewers: IdList = Field(default_factory=list)
    operators: IdList = Field(default_factory=list)
    approvers: IdList = Field(default_factory=list)
    allowed_channels: IdList = Field(default_factory=list)  # empty: every channel the bot is in

    queue: str = "hvbot"
    job_timeout_seconds: int = Field(default=300, ge=10)
    result_ttl_seconds: int = Field(default=86400, ge=60)  # how long pagination/CSV of a result keeps working
    abandoned_check_seconds: float = Field(default=10.0, gt=0)  # the dead-worker detector's period
    worker_registration_check_seconds: float = Field(default=10.0, gt=0)  # re-register after Redis lost data
    usergroup_cache_seconds: float = Field(default=60.0, ge=0)
    channel_post_interval_seconds: float = Field(default=1.0, ge=0)  # Slack: ~1 message/s per channel
    rows_per_page: int = Field(default=20, ge=1, le=100)
    log_json: bool = True
    # Prometheus /metrics of `hvbot worker` and `hvbot monitor` (serve has it on its own port): 0 = off.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_bind: str = "0.0.0.0"

    # Replica health monitor (`hvbot monitor`): sweep period and alert routing.
    sweep_interval_seconds: float = Field(default=60.0, ge=30)  # 30 s is the fastest replication frequency
    sweep_hosts_per_job: int = Field(default=25, ge=1, le=1000)  # hosts one sweep job asks at once
    # How long a killed monitor's lease outlives it: a standby (`hvbot monitor --standby`) takes over after it.
    monitor_lease_seconds: float = Field(default=30.0, ge=2)
    alert_critical_channel: str = "#hv-oncall"
    alert_warning_channel: str = "#hv-ops"
    oncall_usergroup: str | None = None  # S… id, mentioned on Critical alerts
    alert_group_wait_seconds: float = Field(default=30.0, ge=0)
    alert_repeat_interval_seconds: float = Field(default=4 * 3600.0, gt=0)

    # `hvbot demo`: its own monitor sweeps the lab this often and groups alerts this briefly, so an alert shows
    # within seconds of a `lab` command; piped input waits this long for the answers each line started.
    demo_sweep_interval_seconds: float = Field(default=10.0, gt=0)
    demo_alert_group_wait_seconds: float = Field(default=5.0, ge=0)
    demo_answer_timeout_seconds: float = Field(default=180.0, gt=0)

    # Failover approvals: HMAC key of approval buttons (default: the signing secret), where requests go.
    approval_secret: SecretStr | None = None
    approval_channel: str = ""  # on-call channel for approval requests; empty: the requester's channel
    approval_ttl_seconds: int = Field(default=900, ge=60)
    test_failover_needs_approval: bool = True

    @field_validator("viewers", "operators", "approvers", "allowed_channels", "redis_sentinels", mode="before")
    @classmethod
    def _split_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
        return value

    @field_validator("viewers", "operators", "approvers", "allowed_channels")
    @classmethod
    def _check_ids(cls, value: list[str]) -> list[str]:
        for item in value:
            if not item.isalnum() or not item[0].isupper():
                raise ValueError(f"{item!r} is not a Slack ID (expected e.g. U0123ABC, S0456DEF, C0789GHI)")
        return value

    @field_validator("redis_sentinels")
    @classmethod
    def _check_sentinels(cls, value: list[str]) -> list[str]:
        for item in value:
            host, _, port = item.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{item!r} is not host:port (expected e.g. redis-a:26379,redis-b:26379)")
        return value

    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [(item.rpartition(":")[0].strip("[]"), int(item.rpartition(":")[2])) for item in self.redis_sentinels]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, FileSecretsSource(settings_cls), dotenv_settings, file_secret_settings)

    def secret(self, name: str) -> str:
        """The plain value of a SecretStr setting, or '' when unset."""
        value = getattr(self, name)
        return value.get_secret_value() if value is not None else ""

    def api_base_url(self) -> str:
        return self.slack_api_url if self.slack_api_url.endswith("/") else self.slack_api_url + "/"


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)


class ApprovalSecretMissing(RuntimeError):
    """No key to sign approval buttons with: a guessable built-in key would let anyone forge an approval."""


APPROVAL_SECRET_MISSING = ("no approval secret: set HVBOT_APPROVAL_SECRET (16+ characters) or SLACK_SIGNING_SECRET; "
                           "failover approvals cannot be signed without one")


def approval_secret(settings: Settings) -> str:
    """The key approval buttons are signed with: HVBOT_APPROVAL_SECRET, else the Slack signing secret."""
    secret = settings.secret("approval_secret") or settings.secret("slack_signing_secret")
    if not secret:
        raise ApprovalSecretMissing(APPROVAL_SECRET_MISSING)
    return secret
