"""`hvbot check-config`: settings, Redis, every inventory host, Slack `auth.test`, the monitor heartbeat, the workers."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import click
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rq import Queue, Worker

from bot.delivery.slack import web_client
from bot.redis_client import describe, sentinel
from bot.runtime import redis_connection
from bot.settings import Settings, approval_secret
from jobs import units
from jobs.hyperv.fleet import Fleet
from jobs.hyperv.hosts import InventoryError, load_inventory
from jobs.hyperv.settings import JobSettings
from jobs.inventory.queries import list_vms
from jobs.monitor import heartbeat


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    note: bool = False  # informational: printed as "info", never fails the run
    warn: bool = False  # works, but risky: printed as "WARN", never fails the run

    @property
    def label(self) -> str:
        return "info" if self.note else "WARN" if self.warn else ("ok  " if self.ok else "FAIL")


def _safe(run: Callable[[], str], name: str) -> Check:
    try:
        return Check(name, True, run())
    except Exception as exc:  # noqa: BLE001 - every failure becomes one readable line
        return Check(name, False, _describe(exc))


def _describe(exc: Exception) -> str:
    from slack_sdk.errors import SlackApiError

    if isinstance(exc, SlackApiError):
        return f"Slack answered {exc.response.get('error', 'an error')}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


SECRET_SETTINGS = ("slack_bot_token", "slack_signing_secret", "slack_app_token", "approval_secret", "redis_password",
                   "redis_sentinel_password")


def known_secrets(settings: Settings) -> list[str]:
    """Every secret this configuration holds, so no check's text can print one: the checks quote errors
    of other libraries (redis, slack_sdk), whose wording we do not control."""
    values = [settings.secret(name) for name in SECRET_SETTINGS]
    try:
        values.append(urlsplit(settings.redis_url).password or "")
    except ValueError:
        pass
    if settings.inventory is not None:
        try:
            hosts = load_inventory(settings.inventory).hosts
        except InventoryError:
            hosts = ()
        for host in hosts:
            try:
                values.append(host.secret() or "")
            except InventoryError:
                pass
    return sorted({v for v in values if v}, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    for value in secrets:
        text = text.replace(value, "***")
    return text


def check_redis(settings: Settings) -> str:
    redis_connection(settings).ping()
    return f"PING answered: {describe(settings)}"


NOT_DURABLE = ("Redis keeps nothing on disk (appendonly no, save empty): a Redis restart loses pending approvals, "
               "backup windows and their scheduled resumes, alert state and queued jobs. Set `appendonly yes` "
               "(and `appendfsync everysec`) in redis.conf, or `CONFIG SET appendonly yes` and `CONFIG REWRITE`")


def check_sentinels(settings: Settings) -> Check:
    """With Sentinel: how many sentinels answer, and whether they can agree on a failover (SENTINEL CKQUORUM)."""
    clients = sentinel(settings).sentinels
    answers, problems = 0, []
    for address, client in zip(settings.redis_sentinels, clients, strict=True):
        try:
            client.sentinel_ckquorum(settings.redis_master_name)
            answers += 1
        except Exception as exc:  # noqa: BLE001 - one readable line per sentinel
            problems.append(f"{address}: {_describe(exc)}")
    text = f"{answers} of {len(clients)} answer and reach the quorum for {settings.redis_master_name!r}"
    if answers < len(clients) // 2 + 1:
        return Check("redis sentinels", False, f"{text}: no failover is possible ({'; '.join(problems)})")
    return Check("redis sentinels", True, text + (f"; {'; '.join(problems)}" if problems else ""), warn=bool(problems))


def check_durability(settings: Settings) -> Check:
    """Approvals, backup windows and the queue live in Redis: warn when a restart would lose them all."""
    try:
        config = redis_connection(settings).config_get("appendonly", "save")
    except Exception as exc:  # noqa: BLE001 - managed Redis often refuses CONFIG; that is not a failure
        return Check("redis persistence", True, f"cannot read CONFIG ({_describe(exc)}): make sure the server "
                     "persists its data (appendonly yes), since approvals and backup windows live there", note=True)
    aof, save = str(config.get("appendonly", "")).lower(), str(config.get("save", "")).strip()  # redis-py decodes
    if aof == "yes":
        return Check("redis persistence", True, "appendonly yes")
    if save:
        return Check("redis persistence", True, f"RDB snapshots only (save {save}): a crash loses the writes "
                     "since the last snapshot; `appendonly yes` loses at most a second", warn=True)
    return Check("redis persistence", True, NOT_DURABLE, warn=True)


def process_checks(settings: Settings) -> list[Check]:
    """The monitor's heartbeat and the workers registered for the queue. Neither running yet is only a note (a
    first deployment checks its config before starting them); a monitor that stopped sweeping is a failure."""
    try:
        client = redis_connection(settings)
        fresh, text = heartbeat.status_line(client, time.time())
        workers = Worker.count(queue=Queue(settings.queue, connection=client))
    except Exception as exc:  # noqa: BLE001 - Redis is reported by its own check; one line here
        return [Check("monitor", False, f"cannot read its heartbeat: {_describe(exc)}")]
    queue = f"queue {settings.queue}"
    worker_check = (Check("workers", True, f"{workers} registered for {queue}") if workers else
                    Check("workers", True, f"none registered for {queue}: jobs wait until `hvbot worker` runs",
                          note=True))
    return [Check("monitor", fresh is not False, text, note=fresh is None), worker_check]


def check_slack(settings: Settings) -> str:
    if settings.slack_bot_token is None:
        raise ValueError("SLACK_BOT_TOKEN is not set")
    result = web_client(settings).auth_test()
    mode = "Socket Mode (SLACK_APP_TOKEN set)" if settings.slack_app_token else "HTTP mode"
    if settings.slack_app_token is None and settings.slack_signing_secret is None:
        raise ValueError("HTTP mode needs SLACK_SIGNING_SECRET (or set SLACK_APP_TOKEN for Socket Mode)")
    return f"auth.test ok: bot {result.get('user_id')} in team {result.get('team_id')}; {mode}"


def check_approval_secret(settings: Settings) -> str:
    approval_secret(settings)  # raises with the one sentence saying what to set
    source = "HVBOT_APPROVAL_SECRET" if settings.approval_secret is not None else "SLACK_SIGNING_SECRET"
    return f"failover approval buttons are signed with {source}"


def host_checks(settings: Settings) -> list[Check]:
    if settings.inventory is None:
        return [Check("inventory", False, "HVBOT_INVENTORY is not set")]
    try:
        inventory = load_inventory(settings.inventory)
    except Exception as exc:  # noqa: BLE001
        return [Check("inventory", False, _describe(exc))]
    checks = [Check("inventory", True, f"{units.plural(len(inventory.hosts), 'host')} in {settings.inventory}")]
    with Fleet(inventory, JobSettings(inventory=settings.inventory)) as fleet:
        report = list_vms(fleet)  # read-only: Get-VM on every host, in parallel, with deadlines
    counts: dict[str, int] = {}
    for row in report.rows:
        counts[str(row.get("host"))] = counts.get(str(row.get("host")), 0) + 1
    errors = {e["host"]: e["message"] for e in report.errors}
    for host in inventory.hosts:
        if host.name in errors:
            checks.append(Check(f"host {host.name}", False, errors[host.name]))
        else:
            vms = units.plural(counts.get(host.name, 0), "VM")
            checks.append(Check(f"host {host.name}", True, f"Get-VM answered ({vms})"))
    return checks


def run_checks(settings: Settings) -> list[Check]:
    checks = [Check("settings", True, "valid")]
    redis_check = _safe(lambda: check_redis(settings), "redis")
    checks.append(redis_check)
    if settings.redis_sentinels:
        checks.append(check_sentinels(settings))
    if redis_check.ok:
        checks.append(check_durability(settings))
        checks += process_checks(settings)
    checks.append(_safe(lambda: check_slack(settings), "slack"))
    checks.append(_safe(lambda: check_approval_secret(settings), "approval secret"))
    checks += host_checks(settings)
    return checks


@click.command("check-config")
def check_config_command() -> None:
    """Validate settings and reach Redis, Slack and every Hyper-V host; exit 1 if anything fails."""
    try:
        settings = Settings()
    except SettingsError as exc:
        click.echo(f"FAIL settings: {exc}")
        raise SystemExit(1) from None
    except ValidationError as exc:
        click.echo("FAIL settings:")
        for error in exc.errors():
            click.echo(f"  {'.'.join(map(str, error['loc']))}: {error['msg']}")  # messages never carry values
        raise SystemExit(1) from None
    checks = run_checks(settings)
    secrets = known_secrets(settings)
    for check in checks:
        click.echo(redact(f"{check.label} {check.name}: {check.detail}", secrets))
    raise SystemExit(0 if all(c.ok for c in checks) else 1)
