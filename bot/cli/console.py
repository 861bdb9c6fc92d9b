"""`hvbot console`: chat with the bot in a terminal against HVBOT_INVENTORY (no Slack needed)."""

from __future__ import annotations

import sys

import click

from bot.cli.demo import run_session
from bot.settings import Settings


@click.command("console")
def console_command() -> None:
    """Chat with hvbot in this terminal against HVBOT_INVENTORY (no Slack needed)."""
    sys.exit(run_session(Settings(), sys.stdin, sys.stdout))
