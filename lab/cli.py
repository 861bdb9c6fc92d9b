"""``hvbot lab``: start the simulated fleet, write the inventory, print ``lab ready``, run until signalled."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click

from lab import fleet_file as ff
from lab.fleet import Lab
from lab.model import Fleet
from lab.site_fleet import site_fleet


def _load_fleet(fleet_file: Path | None, hosts: int | None, vms_per_host: int | None, first_host: int = 0,
                sites: bool = False) -> Fleet:
    if fleet_file is not None and (hosts is not None or sites):
        raise click.UsageError("use --fleet or --hosts/--vms-per-host/--site-fleet, not both")
    if fleet_file is not None:
        return ff.load_fleet(fleet_file)
    if sites:
        try:
            return site_fleet(hosts or 10, vms_per_host or 24)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    if hosts is not None or vms_per_host is not None:
        return ff.generated_fleet(hosts or 4, vms_per_host or 10, first=first_host)
    return ff.default_fleet()


@click.command("lab")
@click.option("--fleet", "fleet_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="YAML fleet file")
@click.option("--hosts", type=click.IntRange(min=1), help="generate a fleet of N hosts")
@click.option("--vms-per-host", type=click.IntRange(min=0), help="VMs per generated host")
@click.option("--site-fleet", "sites", is_flag=True,
              help="two sites, every VM replicated to the other, realistic boot times (default 10 hosts x 24 VMs)")
@click.option("--first-host", type=click.IntRange(min=0), default=0, show_default=True,
              help="number generated hosts from N (one shard of a fleet served by several lab processes)")
@click.option("--https", is_flag=True, help="serve HTTPS with a lab CA (its path is in the inventory)")
@click.option("--jea-host", "jea_hosts", multiple=True, help="give this host a JEA configuration (repeatable)")
@click.option("--write-inventory", "inventory", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--control-port", type=click.IntRange(min=0, max=65535), default=0, show_default=True, help="0: any free port")
def lab_command(
    fleet_file: Path | None,
    hosts: int | None,
    vms_per_host: int | None,
    sites: bool,
    first_host: int,
    https: bool,
    jea_hosts: tuple[str, ...],
    inventory: Path,
    control_port: int,
) -> None:
    """Run simulated Hyper-V hosts that speak WS-Management + PSRP on 127.0.0.1."""
    fleet = _load_fleet(fleet_file, hosts, vms_per_host, first_host, sites)
    unknown = set(jea_hosts) - set(fleet.hosts)
    if unknown:
        raise click.UsageError(f"--jea-host names unknown hosts: {', '.join(sorted(unknown))}")
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    with Lab(fleet, https=https, jea_hosts=jea_hosts, control_port=control_port) as lab:
        lab.write_inventory(inventory)
        click.echo("lab ready", nl=True)
        done.wait()
    click.echo("lab stopped", err=True)
