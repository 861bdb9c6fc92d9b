"""The WS-Management service of one simulated host: routes parsed requests to shells.

Transport-free: ``handle(body) -> (status, response_bytes)``; ``lab.server`` does the HTTP.
"""

from __future__ import annotations

import collections
import threading
import uuid
from dataclasses import dataclass
from typing import Callable

from lab import wsman
from lab.engine import HostEngine, Invocation
from lab.shell import DEFAULT_CONFIGURATION, Shell

REPLAY_ENTRIES = 64


@dataclass
class Reply:
    status: int
    body: bytes


class ReplayCache:
    """Receive responses by MessageID (gotcha 8): pypsrp re-sends a timed-out Receive unchanged.

    A retry that arrives while the first attempt is still being answered waits for that answer.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done: collections.OrderedDict[str, Reply] = collections.OrderedDict()
        self._pending: dict[str, threading.Event] = {}
        self.hits = 0  # retried Receives answered from the cache

    def claim(self, message_id: str) -> Reply | None:
        """None: the caller must answer (and ``store``); otherwise the earlier answer."""
        with self._lock:
            if message_id in self._done:
                self.hits += 1
                return self._done[message_id]
            event = self._pending.get(message_id)
            if event is None:
                self._pending[message_id] = threading.Event()
                return None
        event.wait()
        with self._lock:
            self.hits += 1
            return self._done.get(message_id)

    def store(self, message_id: str, reply: Reply) -> None:
        with self._lock:
            self._done[message_id] = reply
            while len(self._done) > REPLAY_ENTRIES:
                self._done.popitem(last=False)
            event = self._pending.pop(message_id, None)
        if event is not None:
            event.set()


class WSManService:
    """Shells of one host, keyed by ShellId; configurations checked from the ResourceURI."""

    def __init__(
        self,
        host_name: str,
        engine: HostEngine,
        *,
        configurations: Callable[[], set[str]],
        on_command: Callable[[Invocation], None],
        address: Callable[[], str],
        owner: str,
        max_commands_per_shell: int = 1000,
    ) -> None:
        self.host_name = host_name
        self.engine = engine
        self._configurations = configurations
        self._on_command = on_command
        self._address = address
        self._owner = owner
        self._max_commands = max_commands_per_shell
        self._lock = threading.Lock()
        self._shells: dict[str, Shell] = {}
        self.replay = ReplayCache()

    def handle(self, data: bytes, client_ip: str = "127.0.0.1") -> Reply:
        relates_to = ""
        try:
            request = wsman.parse_request(data)
            relates_to = request.message_id
            if request.operation == "Receive":
                return self._receive_once(request)
            body = self._dispatch(request, client_ip)
            return Reply(200, wsman.envelope(request.operation, relates_to, body))
        except wsman.WSManFault as fault:
            return Reply(500, wsman.fault_envelope(fault, relates_to, self.host_name))
        except Exception as exc:  # psrpcore rejected the data: a fault, never a dropped connection
            fault = wsman.WSManFault(None, "w:InternalError", f"The lab could not process the request: {type(exc).__name__}: {exc}", sender=False)
            return Reply(500, wsman.fault_envelope(fault, relates_to, self.host_name))

    def shell_count(self) -> int:
        with self._lock:
            return len(self._shells)

    def close_all(self) -> None:
        with self._lock:
            shells, self._shells = list(self._shells.values()), {}
        for shell in shells:
            shell.close()

    def _receive_once(self, request: wsman.Request) -> Reply:
        earlier = self.replay.claim(request.message_id)
        if earlier is not None:
            return earlier
        try:
            reply = Reply(200, wsman.envelope("Receive", request.message_id, self._receive(request)))
        except wsman.WSManFault as fault:
            reply = Reply(500, wsman.fault_envelope(fault, request.message_id, self.host_name))
        except Exception as exc:
            fault = wsman.WSManFault(None, "w:InternalError", f"The lab could not process the request: {type(exc).__name__}: {exc}", sender=False)
            reply = Reply(500, wsman.fault_envelope(fault, request.message_id, self.host_name))
        self.replay.store(request.message_id, reply)
        return reply

    def _dispatch(self, request: wsman.Request, client_ip: str) -> str:
        if request.operation == "Create":
            return self._create(request, client_ip)
        shell = self._shell(request)
        if request.operation == "Command":
            line = request.body.find("rsp:CommandLine", wsman.NS)
            command_id = (line.attrib.get("CommandId") if line is not None else None) or ""
            shell.command(command_id.upper(), wsman.b64_child(request.body, "rsp:CommandLine/rsp:Arguments"), request.max_envelope_size)
            return wsman.command_body(command_id.upper())
        if request.operation == "Send":
            shell.send(wsman.b64_child(request.body, "rsp:Send/rsp:Stream"))
            return wsman.SEND_BODY
        if request.operation == "Signal":
            signal = request.body.find("rsp:Signal", wsman.NS)
            code = signal.findtext("rsp:Code", "", wsman.NS) if signal is not None else ""
            shell.signal((signal.attrib.get("CommandId", "") if signal is not None else "").upper(), code.strip())
            return wsman.SIGNAL_BODY
        if request.operation == "Delete":
            with self._lock:
                self._shells.pop(shell.shell_id, None)
            shell.close()
            return ""
        return wsman.shell_element(self._info(shell, client_ip))  # Get (is_alive)

    def _create(self, request: wsman.Request, client_ip: str) -> str:
        configuration = wsman.configuration_from_uri(request.resource_uri)
        allowed = self._configurations()
        if configuration is None or configuration.lower() not in {c.lower() for c in allowed}:
            raise wsman.unknown_configuration(configuration or request.resource_uri)
        configuration = next(c for c in allowed if c.lower() == configuration.lower())
        element = request.body.find("rsp:Shell", wsman.NS)
        shell_id = ((element.attrib.get("ShellId") if element is not None else None) or "").upper()
        if not shell_id:
            shell_id = str(uuid.uuid4()).upper()
        shell = Shell(
            shell_id,
            configuration,
            self.engine,
            on_command=self._on_command,
            max_commands=self._max_commands,
            max_envelope=request.max_envelope_size,
        )
        shell.open(wsman.b64_child(request.body, "rsp:Shell/pwsh:creationXml"))
        with self._lock:
            self._shells[shell_id] = shell
        return wsman.create_body(self._info(shell, client_ip), self._address())

    def _receive(self, request: wsman.Request) -> str:
        shell = self._shell(request)
        stream = request.body.find("rsp:Receive/rsp:DesiredStream", wsman.NS)
        command_id = stream.attrib.get("CommandId", "").upper() or None if stream is not None else None
        fragments, done = shell.receive(command_id, request.operation_timeout, request.max_envelope_size)
        return wsman.receive_body(fragments, command_id, done)

    def _shell(self, request: wsman.Request) -> Shell:
        with self._lock:
            shell = self._shells.get(request.shell_id or "")
        if shell is None:
            raise wsman.invalid_selectors()
        return shell

    def _info(self, shell: Shell, client_ip: str) -> wsman.ShellInfo:
        uri = f"{wsman.PS_URI_PREFIX}{shell.configuration}"
        return wsman.ShellInfo(shell.shell_id, uri, self._owner, client_ip)


__all__ = ["WSManService", "Reply", "ReplayCache", "DEFAULT_CONFIGURATION"]
