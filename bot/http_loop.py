"""One thread serves every HTTP connection and runs the Bolt app inline; a watchdog replaces it when it blocks.

For apps that ack in the request thread (process_before_response=True), whose dispatch is CPU only. Why not a
thread per connection (bot/http_server.py's other mode): CPython's GIL is not a fair scheduler. With 20
concurrent requests on a 2-core machine, 20 threads woke up for their requests and raced for the GIL; the losers
lost again and again, and 1 ack in 50 took 40-100 ms although each needs ~0.3 ms of CPU (bench/ack.py: p99 2x a
bare Bolt app's). One thread running the dispatches back to back serves them in the order their bytes arrive,
with no GIL hand-off and no context switch between requests. Work the acks queue for later (bot/intake.py) runs
on the same thread between requests (`background`), so it never races them either.

A dispatch that blocks (Redis unreachable, a slow /readyz) must not hold up everyone: when the loop has been
busy with one request for `stall_seconds`, the watchdog makes a new thread the loop; the blocked one finishes its
request, hands its connection back and ends.
"""

from __future__ import annotations

import logging
import select
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Protocol

from slack_bolt import App, BoltRequest

log = logging.getLogger("hvbot.http")

MAX_HEAD = 64 * 1024  # request line and headers
SEND_TIMEOUT = 10.0  # a client that does not read its answer for this long is dropped
_WAKE = object()  # selector key data of the wake-up socket


class Background(Protocol):
    """Work the loop runs between requests, on its own thread (bot.intake.Intake)."""

    def attach(self, wake: Callable[[], None]) -> None: ...

    def pending(self) -> bool: ...

    def waited(self) -> float: ...  # seconds the oldest pending piece has waited

    def run(self) -> None: ...  # one short step (a couple of milliseconds)


@dataclass(eq=False)
class _Conn:
    sock: socket.socket
    buf: bytearray = field(default_factory=bytearray)
    continued: bool = False  # "100 Continue" sent for the request being read


@dataclass
class _Request:
    method: str
    path: str
    query: str
    headers: dict[str, list[str]]
    body: bytes
    keep_alive: bool


class _BadRequest(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class LoopHTTPServer:
    def __init__(self, app: App, host: str, port: int, ready: Callable[[], bool],
                 background: Background | None = None, events_path: str = "/slack/events",
                 max_body: int = 1 << 20, stall_seconds: float = 0.05, max_threads: int = 32,
                 max_lag: float = 0.01) -> None:
        self.app, self.ready, self.background = app, ready, background
        self.events_path, self.max_body = events_path, max_body
        self.stall_seconds, self.max_threads, self.max_lag = stall_seconds, max_threads, max_lag
        self._listener = socket.create_server((host, port), backlog=128)  # the default 5 resets a burst's clients
        self._listener.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._selector.register(self._wake_r, selectors.EVENT_READ, _WAKE)
        self._lock = threading.Lock()
        self._leader: threading.Thread | None = None  # the one thread that may use the selector
        self._busy: tuple[threading.Thread, float, _Conn | None] | None = None  # the leader's current request
        self._returned: deque[_Conn] = deque()  # connections handed back by replaced leaders
        self._threads = 0
        self._stopping = False
        self._stopped = threading.Event()
        if background is not None:
            background.attach(self.wake)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def serve_forever(self) -> None:
        """Serve until stop(); the calling thread is the first loop thread (and waits if it gets replaced)."""
        threading.Thread(target=self._watch, name="hvbot-http-watchdog", daemon=True).start()
        with self._lock:
            self._leader = threading.current_thread()
            self._threads += 1
        self._lead()
        self._stopped.wait()
        self._close()

    def stop(self) -> None:
        """Stop after the request at hand; safe in a signal handler (takes no lock)."""
        self._stopping = True
        self.wake(force=True)

    def wake(self, force: bool = False) -> None:
        """Make the loop look at its background work (called when work is submitted from another thread)."""
        if not force and threading.current_thread() is self._leader:
            return  # the loop checks before it next waits
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):  # full: a wake-up is already pending; closed: stopped
            pass

    # --- the loop -------------------------------------------------------------------------------------------

    def _lead(self) -> None:
        me = threading.current_thread()
        try:
            while self._still_leader(me):
                for conn in self._take_returned():
                    self._selector.register(conn.sock, selectors.EVENT_READ, conn)
                    if conn.buf and not self._guarded(conn, me, self._serve_buffered):  # it arrived meanwhile
                        return
                pending = self.background is not None and self.background.pending()
                events = self._selector.select(0 if pending else None)
                for key, _ in events:
                    if key.data is None:
                        self._accept()
                    elif key.data is _WAKE:
                        self._drain_wake()
                    elif not self._guarded(key.data, me, self._on_readable):
                        return  # replaced while serving it: the new leader owns the selector
                if pending and not self._run_background(me, idle=not events):
                    return
        finally:
            with self._lock:
                self._threads -= 1
                if self._stopping and self._threads == 0:
                    self._stopped.set()

    def _guarded(self, conn: _Conn, me: threading.Thread, serve: Callable[[_Conn, threading.Thread], bool]) -> bool:
        try:
            return serve(conn, me)
        except Exception:  # noqa: BLE001 - a bug must cost one connection, not the loop
            log.exception("HTTP connection failed; closing it")
            self._drop(conn)
            return self._still_leader(me)

    def _still_leader(self, me: threading.Thread) -> bool:
        with self._lock:
            return self._leader is me and not self._stopping

    def _take_returned(self) -> list[_Conn]:
        with self._lock:
            conns = list(self._returned)
            self._returned.clear()
        return conns

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. out of file descriptors: try again on the next readiness
                log.exception("accept failed")
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # an answer leaves at once, in one segment
            conn = _Conn(sock)
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _on_readable(self, conn: _Conn, me: threading.Thread) -> bool:
        """Read what arrived and answer every complete request; False if this thread is no longer the leader."""
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return True
        conn.buf += data
        return self._serve_buffered(conn, me)

    def _serve_buffered(self, conn: _Conn, me: threading.Thread) -> bool:
        while True:
            try:
                request: _Request | _BadRequest | None = self._parse(conn)
            except _BadRequest as bad:
                request = bad
            except OSError:  # the client went away while we asked it for the body ("100 Continue")
                self._drop(conn)
                return True
            if request is None:
                return True
            keep_alive = self._serve(conn, request, me)
            if not self._still_leader(me) and not self._stopping:
                # the watchdog took `conn` out of the selector and made another thread the loop: hand it back
                if keep_alive:
                    with self._lock:
                        self._returned.append(conn)
                    self.wake(force=True)
                else:
                    self._close_socket(conn)
                return False
            if not keep_alive:
                self._drop(conn)
                return True

    def _run_background(self, me: threading.Thread, idle: bool) -> bool:
        """Requests come first. Background work runs one step when no request is ready; and when it has fallen
        `max_lag` behind them, steps until it is back within it: it never lags much, even when requests never stop.
        False if this thread is no longer the leader."""
        assert self.background is not None
        while idle or self.background.waited() > self.max_lag:
            self._set_busy(me, None)
            try:
                self.background.run()
            except Exception:  # noqa: BLE001 - the loop must survive a bug in its background work
                log.exception("background work failed")
            finally:
                self._clear_busy(me)
            if not self._still_leader(me):
                return False
            if idle:
                break  # look for requests again before the next step
        return True

    # --- one request ----------------------------------------------------------------------------------------

    def _serve(self, conn: _Conn, request: _Request | _BadRequest, me: threading.Thread) -> bool:
        """Answer one request; True to keep the connection open."""
        self._set_busy(me, conn)
        try:
            if isinstance(request, _BadRequest):
                self._send(conn, request.status, str(request).encode(), {}, False)
                return False
            status, body, headers = self._respond(request)
            self._send(conn, status, body, headers, request.keep_alive)
            return request.keep_alive
        except OSError:  # the client went away while we answered
            return False
        except Exception:  # noqa: BLE001 - one request's bug must not end the loop
            log.exception("request failed: %s %s", request.method, request.path)  # never the body: it has secrets
            try:
                self._send(conn, 500, b"internal error", {}, False)
            except OSError:
                pass
            return False
        finally:
            self._clear_busy(me)

    def _respond(self, request: _Request) -> tuple[int, bytes, dict[str, str]]:
        if request.method == "GET":
            if request.path == "/healthz":
                return 200, b"ok", {}
            if request.path == "/readyz":
                ok = self.ready()
                return (200, b"ready", {}) if ok else (503, b"not ready: Redis unreachable", {})
            return 404, b"not found", {}
        if request.method != "POST":
            return 501, b"unsupported method", {}
        if request.path != self.events_path:
            return 404, b"not found", {}
        headers: dict[str, str | Sequence[str]] = dict(request.headers)
        body = request.body.decode("utf-8", errors="replace")
        response = self.app.dispatch(BoltRequest(body=body, query=request.query, headers=headers))
        return response.status, response.body.encode("utf-8"), response.first_headers()

    def _parse(self, conn: _Conn) -> _Request | None:
        """The next complete request in `conn.buf` (removed from it), or None while it is incomplete."""
        end = conn.buf.find(b"\r\n\r\n", 0, MAX_HEAD + 4)
        if end < 0:
            if len(conn.buf) >= MAX_HEAD + 4:
                raise _BadRequest(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request head too large")
            return None
        lines = bytes(conn.buf[:end]).decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0") or not parts[1].startswith("/"):
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "bad request line")
        method, target, version = parts
        headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip():
                raise _BadRequest(HTTPStatus.BAD_REQUEST, "bad header line")
            headers.setdefault(name.lower(), []).append(value.strip())
        if "transfer-encoding" in headers:
            raise _BadRequest(HTTPStatus.NOT_IMPLEMENTED, "chunked requests are not supported")
        length_text = (headers.get("content-length") or ["0"])[-1]
        if not (length_text.isascii() and length_text.isdigit()):
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "bad Content-Length")
        length = int(length_text)
        if length > self.max_body:
            raise _BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request too large")
        if len(conn.buf) < end + 4 + length:
            expect = (headers.get("expect") or [""])[-1].lower()
            if expect == "100-continue" and not conn.continued:
                conn.continued = True
                try:  # 25 bytes into an idle socket; if even that would block, the client sends anyway after a while
                    conn.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
                except (BlockingIOError, InterruptedError):
                    pass
            return None
        body = bytes(conn.buf[end + 4:end + 4 + length])
        del conn.buf[:end + 4 + length]
        conn.continued = False
        connection = (headers.get("connection") or [""])[-1].lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        path, _, query = target.partition("?")
        return _Request(method, path, query, headers, body, keep_alive)

    def _send(self, conn: _Conn, status: int, body: bytes, headers: dict[str, str], keep_alive: bool) -> None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        lines = [f"HTTP/1.1 {status} {reason}"]
        given = {name.lower() for name in headers}
        lines += [f"{name}: {value}" for name, value in headers.items() if name.lower() != "content-length"]
        if "content-type" not in given:
            lines.append("Content-Type: text/plain; charset=utf-8")
        lines.append(f"Content-Length: {len(body)}")
        if not keep_alive:
            lines.append("Connection: close")
        _send_all(conn.sock, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def _drop(self, conn: _Conn) -> None:
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        self._close_socket(conn)

    @staticmethod
    def _close_socket(conn: _Conn) -> None:
        try:
            conn.sock.close()
        except OSError:
            pass

    # --- the watchdog ---------------------------------------------------------------------------------------

    def _set_busy(self, me: threading.Thread, conn: _Conn | None) -> None:
        with self._lock:
            self._busy = (me, time.monotonic(), conn)

    def _clear_busy(self, me: threading.Thread) -> None:
        with self._lock:
            if self._busy is not None and self._busy[0] is me:
                self._busy = None

    def _watch(self) -> None:
        while True:
            time.sleep(self.stall_seconds / 2)
            with self._lock:
                if self._stopping:
                    return
                busy = self._busy
                if busy is None or busy[0] is not self._leader or self._threads >= self.max_threads:
                    continue
                thread, since, conn = busy
                if time.monotonic() - since < self.stall_seconds:
                    continue
                # The leader is inside a request (not in select), so nobody uses the selector right now. Its
                # connection stays with it until it hands it back; the new leader takes everything else.
                if conn is not None:
                    try:
                        self._selector.unregister(conn.sock)
                    except (KeyError, ValueError):
                        pass
                leader = threading.Thread(target=self._lead, name="hvbot-http", daemon=True)
                self._leader, self._busy = leader, None
                self._threads += 1
            log.warning("HTTP loop blocked for %.0f ms in one request; a new thread takes over",
                        (time.monotonic() - since) * 1000)
            leader.start()

    def _close(self) -> None:
        for key in list(self._selector.get_map().values()):
            if isinstance(key.data, _Conn):
                self._close_socket(key.data)
        for conn in self._take_returned():
            self._close_socket(conn)
        self._selector.close()
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()


def _send_all(sock: socket.socket, data: bytes) -> None:
    """sendall for a non-blocking socket: answers are small and leave at once; a client that does not read for
    SEND_TIMEOUT is dropped."""
    view = memoryview(data)
    deadline = time.monotonic() + SEND_TIMEOUT
    while view:
        try:
            view = view[sock.send(view):]
        except (BlockingIOError, InterruptedError):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [sock], [], left)[1]:
                raise TimeoutError("client does not read its answer") from None
