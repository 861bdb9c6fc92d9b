"""``LabHost``: one simulated host's HTTP(S) endpoint at ``/wsman``.

HTTP/1.1 keep-alive, Basic auth, optional TLS, and the host's fault switches. Every response goes
out in ONE write (status line, headers and body together): two writes meet Nagle + delayed ACK
and cost ~40 ms per exchange on keep-alive connections (psrp.md gotcha 1).
"""

from __future__ import annotations

import base64
import hmac
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from lab import wsman
from lab.control import HostFaults
from lab.service import Reply, WSManService


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: Any, tls: ssl.SSLContext | None) -> None:
        self.tls = tls
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is not None:  # handshake on the connection's own thread, not the accept loop
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        with self.connections_lock:
            self.connections.add(request)
        try:
            super().finish_request(request, client_address)
        finally:
            with self.connections_lock:
                self.connections.discard(request)

    def drop_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class LabHost:
    """One host: its WSMan service, credentials, switches, and an HTTP server that can go down and up."""

    def __init__(
        self,
        service: WSManService,
        *,
        username: str,
        password: str,
        faults: HostFaults,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.name = service.host_name
        self.service = service
        self.faults = faults
        self._auth = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self._tls = tls
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.requests = 0  # HTTP exchanges answered or refused by this host (for benchmarks)
        self.largest_response = 0  # bytes of the largest SOAP body sent (MaxEnvelopeSize checks)
        self._count_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}/wsman"

    @property
    def is_up(self) -> bool:
        return self._httpd is not None

    def start(self, port: int = 0) -> None:
        self._stopping.clear()
        self._httpd = _Server(("127.0.0.1", port or self.port), _make_handler(self), self._tls)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name=f"lab-{self.name}")
        self._thread.start()

    def go_down(self) -> None:
        """Connection refused from now on: the listening socket closes and open connections drop.

        Shells are lost, as after a reboot; a client must open a new pool when the host is back.
        """
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        httpd.drop_connections()
        self.service.close_all()

    def come_up(self) -> None:
        if self._httpd is None:
            self.start(self.port)

    def stop(self) -> None:
        self._stopping.set()
        self.faults.set_hung(False)
        self.go_down()

    def count_request(self) -> None:
        with self._count_lock:
            self.requests += 1

    def authorized(self, header: str | None) -> bool:
        if self.faults.auth_failure or header is None:
            return False
        return hmac.compare_digest(header.encode(), self._auth.encode())

    @property
    def stopping(self) -> threading.Event:
        return self._stopping


def _make_handler(host: LabHost) -> Callable[..., BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "Microsoft-HTTPAPI/2.0"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:  # never log requests: they carry credentials
            pass

        def _send(self, status: int, body: bytes = b"", extra: str = "") -> None:
            content_type = "Content-Type: application/soap+xml;charset=UTF-8\r\n" if body else ""
            head = (
                f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}\r\nServer: {self.server_version}\r\n"
                f"{extra}{content_type}Content-Length: {len(body)}\r\n\r\n"
            )
            host.largest_response = max(host.largest_response, len(body))
            self.wfile.write(head.encode() + body)  # one write: see the module docstring

        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            host.count_request()
            if host.faults.hung:
                host.faults.wait_while_hung(host.stopping)
                self.close_connection = True
                return
            if not host.authorized(self.headers.get("Authorization")):
                self._send(401, extra='WWW-Authenticate: Basic realm="WSMAN"\r\nWWW-Authenticate: Negotiate\r\n')
                return
            if host.faults.latency > 0:
                host.stopping.wait(host.faults.latency)
            if self.path.split("?")[0].rstrip("/").lower() != "/wsman":
                self._send(404)
                return
            reply = _injected(host, data) or host.service.handle(data, self.client_address[0])
            stall = host.faults.take_receive_stall() if b"windows/shell/Receive<" in data else 0.0
            if stall > 0:  # the answer is computed (and in the replay cache) but not delivered in time
                host.stopping.wait(stall)
            self._send(reply.status, reply.body)

        def do_GET(self) -> None:
            host.count_request()
            self._send(405)

    return Handler


def _injected(host: LabHost, data: bytes) -> Reply | None:
    fault = host.faults.take_fault()
    if fault is None:
        return None
    try:
        relates_to = wsman.parse_request(data).message_id
    except wsman.WSManFault:
        relates_to = ""
    subcode = "w:InternalError"
    error = wsman.WSManFault(fault.code, subcode, fault.reason, sender=False)
    return Reply(500, wsman.fault_envelope(error, relates_to, host.name))
