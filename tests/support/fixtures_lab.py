"""pytest fixtures for the simulated Hyper-V lab (registered in tests/conftest.py).

- ``lab`` (session): the default fleet (``lab.fleet_file.default_fleet()``) over HTTP with the real
  Hyper-V engine. Shared by every test: request ``clean_lab`` instead when a test flips switches.
- ``clean_lab`` (function): the same ``lab``, with every fault switch cleared before and after the
  test and downed hosts brought back. Not autouse: only tests that ask for it pay for it.
- ``lab_https`` (session): the default fleet over HTTPS; ``lab_https.tls.ca_file`` is the CA to verify.
- ``lab_inventory_path`` (session): the inventory file of ``lab`` (docs/where-things-live.md format).
- ``make_lab`` (function): a factory, ``make_lab(fleet=..., https=..., jea_hosts=..., engine_factory=...,
  max_commands_per_shell=...)``; each lab it makes is stopped when the test ends.
- ``site_down`` (function): a fresh default lab whose site A (hv-a1, hv-a2) lost power, and a ``Fleet`` on
  its inventory (10 s deadline): the starting point of a site failover.

``lab_wsman(lab, host, **kwargs)`` builds the pypsrp ``WSMan`` for one lab host (Basic auth, the
lab's credentials, the CA file over HTTPS); keyword arguments go to ``WSMan``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from pypsrp.wsman import WSMan

from jobs.hyperv.fleet import Fleet
from jobs.hyperv.hosts import load_inventory
from jobs.hyperv.settings import JobSettings
from lab.fleet import Lab


def _default_fleet() -> Any:
    from lab.fleet_file import default_fleet

    return default_fleet()


def lab_wsman(lab: Lab, host: str, **kwargs: Any) -> WSMan:
    handle = lab.hosts[host]
    options: dict[str, Any] = {
        "port": handle.port,
        "path": "wsman",
        "auth": "basic",
        "username": lab.username,
        "password": lab.password,
        "ssl": lab.https,
    }
    if lab.https:
        options["cert_validation"] = str(lab.tls.ca_file) if lab.tls else True
    else:
        options["encryption"] = "never"
    options.update(kwargs)
    return WSMan("127.0.0.1", **options)


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    with Lab(_default_fleet()) as running:
        yield running


@pytest.fixture
def clean_lab(lab: Lab) -> Iterator[Lab]:
    lab.clear_faults()
    yield lab
    lab.clear_faults()


@pytest.fixture(scope="session")
def lab_https() -> Iterator[Lab]:
    with Lab(_default_fleet(), https=True) as running:
        yield running


@pytest.fixture(scope="session")
def lab_inventory_path(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lab.write_inventory(tmp_path_factory.mktemp("lab") / "inventory.yml")


@pytest.fixture
def make_lab() -> Iterator[Callable[..., Lab]]:
    made: list[Lab] = []

    def factory(fleet: Any = None, **kwargs: Any) -> Lab:
        running = Lab(fleet if fleet is not None else _default_fleet(), **kwargs).start()
        made.append(running)
        return running

    yield factory
    for running in made:
        running.stop()


@pytest.fixture
def lab_fleet(make_lab: Callable[..., Lab], tmp_path: Path,
              request: pytest.FixtureRequest) -> Iterator[tuple[Lab, Fleet]]:
    """A private lab (its switches and faults cannot leak into other tests) and a Fleet on its inventory; the call
    deadline is the test module's ``DEADLINE`` (seconds), 10 s when it sets none."""
    lab = make_lab()
    inventory = load_inventory(lab.write_inventory(tmp_path / "inventory.yml"))
    with Fleet(inventory, JobSettings(deadline_s=getattr(request.module, "DEADLINE", 10.0))) as fleet:
        yield lab, fleet


@pytest.fixture
def site_down(make_lab: Callable[..., Lab], tmp_path: Path) -> Iterator[tuple[Lab, Fleet]]:
    lab = make_lab()
    inv = lab.write_inventory(tmp_path / "inventory.yml")
    for host in ("hv-a1", "hv-a2"):
        lab.control(host, "power_loss", {})
    with Fleet(load_inventory(inv), JobSettings(deadline_s=10)) as fleet:
        yield lab, fleet
