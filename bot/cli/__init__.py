"""`hvbot` command line: one group, each subcommand lives in the module named for what it does."""

from __future__ import annotations

import importlib

import click

from jobs.gc_tuning import tune_gc

# name -> "module:attribute"; imported only when that subcommand runs, so `hvbot lab` never loads Slack.
COMMANDS: dict[str, str] = {
    "lab": "lab.cli:lab_command",
    "jea": "bot.cli.jea:jea_command",
    "serve": "bot.cli.serve:serve_command",
    "worker": "bot.cli.worker:worker_command",
    "console": "bot.cli.console:console_command",
    "demo": "bot.cli.demo:demo_command",
    "check-config": "bot.cli.check_config:check_config_command",
    "backup": "bot.cli.backup:backup_command",
    "monitor": "bot.cli.monitor:monitor_command",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)


@click.group(cls=LazyGroup)
def main() -> None:
    """hvbot: operate Hyper-V and Hyper-V Replica from Slack."""
    tune_gc()  # every hvbot process is long-running and allocation-heavy (jobs/gc_tuning.py)
