"""`hvbot jea --out DIR`: write the JEA role capability, session configuration and README."""

from __future__ import annotations

from pathlib import Path

import click

from jobs.hyperv.jea import write_jea


@click.command("jea")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="directory to write the endpoint files into")
@click.option("--principal", default="CONTOSO\\svc-hvbot", show_default=True,
              help="account or group that may use the endpoint (RoleDefinitions)")
def jea_command(out: Path, principal: str) -> None:
    """Generate the JEA endpoint files from hvbot's command registry."""
    for path in write_jea(out, principal):
        click.echo(str(path))
