"""`hvbot backup check|start|end VM`: for backup products' pre/post-job scripts.

Exit codes 0 (ready/done), 75 (try later), 1 (failed); one line on stderr; `--json` prints the
jobs.backup.contract document on stdout. When Slack settings and HVBOT_BACKUP_REPORT_CHANNEL are set, the same
line is posted there, so chat sees what the backup product did.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import click
import redis

from bot.cli.connections import cli_redis
from bot.delivery.slack import web_client
from bot.grammar import parse_duration
from bot.logs import configure_logging
from bot.settings import Settings
from jobs.backup import operations as backup
from jobs.backup.contract import (
    CliResult,
    Command,
    check_result,
    failure_result,
    window_ended_result,
    window_started_result,
)
from jobs.backup.settings import BackupSettings
from jobs.hyperv.fleet import Fleet
from jobs.hyperv.settings import JobSettings


def window_length(text: str) -> timedelta:
    """The `--for` value (the window's own limit is checked by the window store, which says why)."""
    try:
        return parse_duration(text)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


def _run(command: Command, vm: str, as_json: bool, action: Callable[[Fleet, BackupSettings], CliResult]) -> None:
    configure_logging(json_logs=False, level=logging.CRITICAL)  # stderr carries the one-line reason only
    settings = BackupSettings()
    try:
        with Fleet.from_settings(JobSettings()) as fleet:
            result = action(fleet, settings)
    except backup.BackupError as err:
        result = failure_result(command, vm, err.message, transient=err.transient)
    except backup.WindowError as err:
        result = failure_result(command, vm, str(err))
    except (ValueError, redis.RedisError) as err:
        result = failure_result(command, vm, f"{type(err).__name__}: {err}", transient=isinstance(err, redis.RedisError))
    _report_to_slack(settings, result)
    if as_json:
        click.echo(result.json_text())
    click.echo(result.line, err=True)
    sys.exit(int(result.exit_code))


def _report_to_slack(settings: BackupSettings, result: CliResult) -> None:
    if not settings.report_channel:
        return
    bot_settings = Settings()
    if not bot_settings.secret("slack_bot_token"):
        return
    try:
        web_client(bot_settings).chat_postMessage(channel=settings.report_channel, text=f"hvbot backup {result.line}")
    except Exception as exc:  # noqa: BLE001 - the backup product's answer must not depend on Slack
        click.echo(f"(not posted to Slack: {type(exc).__name__})", err=True)


def _connection() -> redis.Redis:
    return cli_redis(Settings())


@click.group("backup")
def backup_command() -> None:
    """Replica-VM backup helpers for backup products' pre/post scripts (exit 0 / 75 / 1)."""


@backup_command.command("check")
@click.argument("vm")
@click.option("--json", "as_json", is_flag=True, help="print the result document on stdout")
def check_command(vm: str, as_json: bool) -> None:
    """Is the Replica VM ready for a backup now?"""
    _run(Command.CHECK, vm, as_json, lambda fleet, s: check_result(backup.check(fleet, vm)))


@backup_command.command("start")
@click.argument("vm")
@click.option("--for", "length", required=True, help="window length, e.g. 2h or 90m")
@click.option("--json", "as_json", is_flag=True)
def start_command(vm: str, length: str, as_json: bool) -> None:
    """Pause replication for a backup window; it is resumed at the end even if nothing calls `end`."""
    duration = window_length(length)

    def start(fleet: Fleet, settings: BackupSettings) -> CliResult:
        now = datetime.now(UTC)
        store = backup.window_store(_connection(), settings)
        return window_started_result(backup.start_window(fleet, store, vm, now, now + duration, "cli", now))

    _run(Command.START, vm, as_json, start)


@backup_command.command("end")
@click.argument("vm")
@click.option("--json", "as_json", is_flag=True)
def end_command(vm: str, as_json: bool) -> None:
    """End the backup window now: resume replication and verify it."""

    def end(fleet: Fleet, settings: BackupSettings) -> CliResult:
        store = backup.window_store(_connection(), settings)
        ended = backup.end_window(fleet, store, vm, datetime.now(UTC), settings)
        return window_ended_result(ended.window, ended.resumed.text())

    _run(Command.END, vm, as_json, end)
