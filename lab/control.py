"""Fault and latency switches per host, the command log, and the JSON control endpoint.

The control endpoint is a small HTTP server of its own:

- ``POST /control`` with ``{"host": "hv-a1", "action": "latency", "seconds": 0.2}``; actions
  ``latency``, ``down``, ``up``, ``hung``, ``auth_failure``, ``fault`` (``code``, ``reason``,
  ``count``), ``stall_receive`` (``seconds``), ``clear``; any other action (``vm_state``,
  ``replication``, ``power_loss`` ...) goes to ``Fleet.apply_control(action, args)``, including the
  read-only ``vms`` (``vm``): every copy of a VM with its state and replication, for checks.
- ``GET /log`` (optionally ``?host=hv-a1``): the command log as JSON.
- ``GET /hosts``: name, url and current switches of every host.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Protocol
from urllib.parse import parse_qs, urlparse


@dataclass
class InjectedFault:
    code: int | None
    reason: str
    remaining: int


class HostFaults:
    """Switches read by the host's HTTP handler on every request; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.latency = 0.0
        self.auth_failure = False
        self._fault: InjectedFault | None = None
        self._stall_receive = 0.0
        self._release = threading.Event()  # set = not hung
        self._release.set()

    @property
    def hung(self) -> bool:
        return not self._release.is_set()

    def set_hung(self, hung: bool) -> None:
        if hung:
            self._release.clear()
        else:
            self._release.set()

    def wait_while_hung(self, stop: threading.Event) -> None:
        """Block a request while the host is hung; returns when released (or the lab stops)."""
        while not self._release.wait(0.1) and not stop.is_set():
            pass

    def inject_fault(self, code: int | None, reason: str, count: int = 1) -> None:
        with self._lock:
            self._fault = InjectedFault(code, reason, count)

    def take_fault(self) -> InjectedFault | None:
        with self._lock:
            if self._fault is None or self._fault.remaining <= 0:
                return None
            self._fault.remaining -= 1
            return InjectedFault(self._fault.code, self._fault.reason, self._fault.remaining)

    def stall_next_receive(self, seconds: float) -> None:
        with self._lock:
            self._stall_receive = seconds

    def take_receive_stall(self) -> float:
        with self._lock:
            seconds, self._stall_receive = self._stall_receive, 0.0
            return seconds

    def clear(self) -> None:
        with self._lock:
            self.latency = 0.0
            self.auth_failure = False
            self._fault = None
            self._stall_receive = 0.0
        self._release.set()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            fault = self._fault
            return {
                "latency": self.latency,
                "auth_failure": self.auth_failure,
                "hung": self.hung,
                "fault": None if fault is None else {"code": fault.code, "reason": fault.reason, "remaining": fault.remaining},
            }


@dataclass(frozen=True)
class LogEntry:
    """One decoded command as the host received it."""

    host: str
    cmdlet: str
    parameters: tuple[tuple[str | None, Any], ...]
    configuration: str
    is_script: bool
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "cmdlet": self.cmdlet,
            "parameters": [[name, jsonable(value)] for name, value in self.parameters],
            "configuration": self.configuration,
            "is_script": self.is_script,
            "time": self.time,
        }


def jsonable(value: Any) -> Any:
    """psrpcore values (PSString, PSInt, lists, PSObjects) as plain JSON values."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return str(value)


class CommandLog:
    """Every command every host received, in order; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[LogEntry] = []

    def add(self, entry: LogEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self, host: str | None = None) -> list[LogEntry]:
        with self._lock:
            return [e for e in self._entries if host is None or e.host == host]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class Controllable(Protocol):
    """What the control endpoint drives (``lab.fleet.Lab``)."""

    def control(self, host: str | None, action: str, args: dict[str, Any]) -> dict[str, Any]: ...

    def command_log(self, host: str | None = None) -> list[LogEntry]: ...

    def describe_hosts(self) -> list[dict[str, Any]]: ...


class ControlServer:
    """The JSON control endpoint on 127.0.0.1."""

    def __init__(self, target: Controllable, port: int = 0) -> None:
        handler = _make_handler(target)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True, name="lab-control")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/control"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _make_handler(target: Controllable) -> Callable[..., BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and the demo read stdout
            pass

        def _reply(self, status: int, payload: Any) -> None:
            body = json.dumps(payload).encode()
            head = (
                f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            self.wfile.write(head + body)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/log":
                host = parse_qs(url.query).get("host", [None])[0]
                self._reply(200, [e.to_dict() for e in target.command_log(host)])
            elif url.path == "/hosts":
                self._reply(200, target.describe_hosts())
            else:
                self._reply(404, {"error": f"no such path {url.path}"})

        def do_POST(self) -> None:
            if urlparse(self.path).path != "/control":
                self._reply(404, {"error": "POST /control only"})
                return
            try:
                args = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                action = str(args.pop("action"))
                host = args.pop("host", None)
                self._reply(200, {"ok": True, "result": target.control(host, action, args)})
            except (KeyError, ValueError, TypeError) as exc:
                self._reply(400, {"ok": False, "error": str(exc)})

    return Handler
