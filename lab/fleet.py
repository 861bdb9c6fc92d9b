"""``Lab``: every host of a fleet as its own WS-Management endpoint, plus the control endpoint.

    with Lab(default_fleet(), https=True, jea_hosts=("hv-b1",)) as lab:
        lab.write_inventory(path)
        lab.hosts["hv-a1"].faults.latency = 0.2

Credentials: one fixed lab username and a random per-lab password. The password is in the inventory
file (mode 0600) and ``Lab.password``; it is never logged or printed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from lab.cmdlets import HyperVEngine
from lab.control import CommandLog, ControlServer, HostFaults, LogEntry
from lab.engine import HostEngine, Invocation
from lab.server import LabHost
from lab.service import WSManService
from lab.shell import DEFAULT_CONFIGURATION
from lab.tls import LabTLS, make_tls

LAB_USERNAME = "lab-admin"
DEFAULT_JEA_CONFIGURATION = "HvBot"
EngineFactory = Callable[[Any, str], HostEngine]


def hyperv_engine(fleet: Any, host_name: str) -> HostEngine:
    return HyperVEngine(fleet, host_name)


@dataclass
class HostHandle:
    """What tests and the control endpoint see of one host."""

    name: str
    site: str
    fqdn: str
    configuration: str | None
    server: LabHost

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def faults(self) -> HostFaults:
        return self.server.faults


class Lab:
    def __init__(
        self,
        fleet: Any,
        *,
        https: bool = False,
        jea_hosts: tuple[str, ...] | list[str] = (),
        engine_factory: EngineFactory = hyperv_engine,
        max_commands_per_shell: int = 1000,
        control_port: int | None = 0,
    ) -> None:
        self.fleet = fleet
        self.https = https
        self.username = LAB_USERNAME
        self.password = secrets.token_urlsafe(18)
        self.log = CommandLog()
        self.hosts: dict[str, HostHandle] = {}
        self.tls: LabTLS | None = None
        self.control_server: ControlServer | None = None
        self._jea_hosts = set(jea_hosts)
        self._engine_factory = engine_factory
        self._max_commands = max_commands_per_shell
        self._control_port = control_port
        self._tmp: Path | None = None
        self._manual_down: set[str] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> "Lab":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> "Lab":
        context = None
        if self.https:
            self._tmp = Path(tempfile.mkdtemp(prefix="hvbot-lab-"))
            self.tls = make_tls(self._tmp)
            context = self.tls.server_context()
        for name, host in self.fleet.hosts.items():
            handle = self._build_host(name, host, context)
            handle.server.start()
            self.hosts[name] = handle
        if self._control_port is not None:
            self.control_server = ControlServer(self, self._control_port)
            self.control_server.start()
        return self

    def stop(self) -> None:
        if self.control_server is not None:
            self.control_server.stop()
            self.control_server = None
        for handle in self.hosts.values():
            handle.server.stop()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def _build_host(self, name: str, host: Any, context: Any) -> HostHandle:
        configuration = getattr(host, "jea_configuration", None)
        if configuration is None and name in self._jea_hosts:
            configuration = DEFAULT_JEA_CONFIGURATION
        configurations = {DEFAULT_CONFIGURATION} | ({configuration} if configuration else set())
        service = WSManService(
            name,
            self._engine_factory(self.fleet, name),
            configurations=lambda: configurations,
            on_command=lambda invocation, host_name=name: self._record(host_name, invocation),
            address=lambda: self.hosts[name].url,
            owner=f"{getattr(host, 'fqdn', name)}\\{self.username}",
            max_commands_per_shell=self._max_commands,
        )
        server = LabHost(service, username=self.username, password=self.password, faults=HostFaults(), tls=context)
        return HostHandle(name, getattr(host, "site", ""), getattr(host, "fqdn", name), configuration, server)

    def _record(self, host: str, invocation: Invocation) -> None:
        for call in invocation.commands:
            self.log.add(LogEntry(host, call.name, call.parameters, invocation.configuration, call.is_script))

    # -- reading -----------------------------------------------------------------------------

    def command_log(self, host: str | None = None) -> list[LogEntry]:
        return self.log.entries(host)

    def describe_hosts(self) -> list[dict[str, Any]]:
        return [
            {"name": h.name, "site": h.site, "url": h.url, "up": h.server.is_up, "requests": h.server.requests, **h.faults.snapshot()}
            for h in self.hosts.values()
        ]

    def inventory(self) -> dict[str, Any]:
        """The inventory in the format of docs/where-things-live.md."""
        hosts = []
        for h in self.hosts.values():
            entry: dict[str, Any] = {
                "name": h.name,
                "fqdn": h.fqdn,
                "site": h.site,
                "url": h.url,
                "auth": "basic",
                "username": self.username,
                "password": self.password,
            }
            if self.tls is not None:
                entry["ca_file"] = str(self.tls.ca_file)
            if h.configuration:
                entry["configuration"] = h.configuration
            hosts.append(entry)
        lab: dict[str, Any] = {"control_url": self.control_server.url if self.control_server else None}
        return {"hosts": hosts, "lab": lab}

    def write_inventory(self, path: str | os.PathLike[str]) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.touch(mode=0o600)
        tmp.write_text(yaml.safe_dump(self.inventory(), sort_keys=False))
        tmp.replace(target)  # atomic: a reader never sees half a file
        return target

    # -- switches ----------------------------------------------------------------------------

    def clear_faults(self) -> None:
        self._manual_down.clear()  # before the loop: a host downed by hand comes back up too
        for name, handle in self.hosts.items():
            handle.faults.clear()
            if not handle.server.is_up and self._powered(name):
                handle.server.come_up()

    def control(self, host: str | None, action: str, args: dict[str, Any]) -> dict[str, Any]:
        """One control action; protocol switches here, model actions to ``Fleet.apply_control``."""
        if action in _HOST_ACTIONS:
            if host not in self.hosts:
                raise ValueError(f"unknown host {host!r}; hosts: {', '.join(self.hosts)}")
            _HOST_ACTIONS[action](self, self.hosts[str(host)], args)
            return {"host": host, **self.hosts[str(host)].faults.snapshot(), "up": self.hosts[str(host)].server.is_up}
        if action == "clear_all":
            self.clear_faults()
            return {}
        model_args = dict(args, host=host) if host is not None else dict(args)
        result = self.fleet.apply_control(action, model_args)
        self._sync_power()
        return result

    def _powered(self, name: str) -> bool:
        return bool(getattr(self.fleet.hosts[name], "powered", True)) and name not in self._manual_down

    def _sync_power(self) -> None:
        """A host the model powered off refuses connections; powered on again, it listens again."""
        for name, handle in self.hosts.items():
            if not self._powered(name) and handle.server.is_up:
                handle.server.go_down()
            elif self._powered(name) and not handle.server.is_up:
                handle.server.come_up()


def _down(lab: Lab, h: HostHandle, args: dict[str, Any]) -> None:
    lab._manual_down.add(h.name)
    h.server.go_down()


def _up(lab: Lab, h: HostHandle, args: dict[str, Any]) -> None:
    lab._manual_down.discard(h.name)
    h.server.come_up()


def _latency(lab: Lab, h: HostHandle, args: dict[str, Any]) -> None:
    h.faults.latency = float(args.get("seconds", 0.0))


def _hung(lab: Lab, h: HostHandle, args: dict[str, Any]) -> None:
    h.faults.set_hung(bool(args.get("on", True)))


def _auth(lab: Lab, h: HostHandle, args: dict[str, Any]) -> None:
    h.faults.auth_failure = bool(args.get("on", True))


def _fault(lab: Lab, h: HostHandle, args: dict[str, Any]) -> None:
    code = args.get("code")
    h.faults.inject_fault(None if code is None else int(code), str(args.get("reason", "Injected fault")), int(args.get("count", 1)))


def _stall(lab: Lab, h: HostHandle, args: dict[str, Any]) -> None:
    h.faults.stall_next_receive(float(args.get("seconds", 1.0)))


def _clear(lab: Lab, h: HostHandle, args: dict[str, Any]) -> None:
    h.faults.clear()
    lab._manual_down.discard(h.name)
    if lab._powered(h.name):
        h.server.come_up()


_HOST_ACTIONS: dict[str, Callable[[Lab, HostHandle, dict[str, Any]], None]] = {
    "down": _down,
    "up": _up,
    "latency": _latency,
    "hung": _hung,
    "auth_failure": _auth,
    "fault": _fault,
    "stall_receive": _stall,
    "clear": _clear,
}
