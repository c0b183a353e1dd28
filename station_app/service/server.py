"""The inspection workflow served on a local Unix socket to front ends in other processes.

The core runs the workflow; the operator UI (kiosk session) and automation connect here.
Every front end that says hello gets a snapshot (the last state change and the verdict on
screen), then every event; its commands go straight to :meth:`InspectionWorkflow.submit`.

What the server guarantees the workflow:
- A front end never blocks it. Events are encoded once on the workflow's thread (the
  arrays are not copied) and put on each front end's bounded queue; a writer thread per
  front end sends them. A front end that stops reading overflows its queue and is
  dropped; when it comes back it gets a fresh snapshot.
- A front end that disappears, sends garbage or breaks the framing loses its own
  connection and nothing else; the inspection goes on and other front ends keep going.
- Only a Unix socket (mode 0660 by default): no network listener.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import selectors
import socket
import stat
import struct
import threading
from pathlib import Path
from typing import Any, Callable

from station_app.errors import StationError
from station_app.service.protocol import (CLIENT_KINDS, MAX_CLIENT_MESSAGE, PROTOCOL_VERSION,
                                          CommandMessage, ErrorReply, EventMessage, Frame,
                                          FramingError, Hello, IdleTimeout, ProtocolError,
                                          Snapshot, StatusReply, StatusRequest, Welcome,
                                          decode_message, encode_message, read_frame,
                                          send_frame)
from station_app.workflow.events import Event, StateChanged, VerdictReady
from station_app.workflow.states import State

log = logging.getLogger("station_app.service.server")

MAX_SOCKET_PATH = 107            # bytes in sockaddr_un.sun_path, less the terminating NUL


class _Close:
    """Queued after a last error reply: send what is queued, then end the connection."""


_CLOSE = _Close()


class _Connection:
    """One front end: a reader thread (requests) and a writer thread (its bounded queue)."""

    def __init__(self, server: WorkflowServer, sock: socket.socket, number: int) -> None:
        self.server = server
        self.sock = sock
        self.name = f"client {number}{_peer(sock)}"
        self.subscribed = False
        self._queue: collections.deque[Frame | _Close] = collections.deque()
        self._queued_bytes = 0
        self._changed = threading.Condition()
        self._aborted = False
        self.reader = threading.Thread(target=self._read, name=f"service-read-{number}",
                                       daemon=True)
        self._writer = threading.Thread(target=self._write, name=f"service-write-{number}",
                                        daemon=True)

    def start(self) -> None:
        self._writer.start()
        self.reader.start()

    # -- outgoing ------------------------------------------------------------------------

    def enqueue(self, item: Frame | _Close) -> bool:
        """Queue without waiting; False when the front end is too far behind to keep."""
        server = self.server
        with self._changed:
            if self._aborted:
                return True
            if isinstance(item, Frame):
                size = item.size
                if self._queue and (len(self._queue) >= server.queue_messages
                                    or self._queued_bytes + size > server.queue_bytes):
                    return False
                self._queued_bytes += size
            self._queue.append(item)
            self._changed.notify()
        return True

    def reply(self, message: Any) -> None:
        try:
            frame = encode_message(message)
        except ProtocolError:
            log.exception("cannot encode a reply to %s", self.name)
            frame = encode_message(ErrorReply("internal", "the core could not encode its reply",
                                              getattr(message, "id", None)))
        if not self.enqueue(frame):
            self.abort("it is not reading its replies")

    def fail(self, error: ProtocolError) -> None:
        """Answer a broken message; the connection ends too when the framing is lost."""
        log.warning("%s: %s (%s)%s", self.name, error, error.code,
                    "; closing the connection" if error.fatal else "")
        self.reply(ErrorReply(error.code, str(error), error.request_id))
        if error.fatal:
            self.enqueue(_CLOSE)

    def abort(self, reason: str = "") -> None:
        """End the connection now (from any thread, never blocking): queued data is lost."""
        with self._changed:
            if self._aborted:
                return
            self._aborted = True
            self._queue.clear()
            self._queued_bytes = 0
            self._changed.notify()
        if reason:
            log.warning("%s dropped: %s", self.name, reason)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def _write(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._queue or self._aborted)
                if self._aborted:
                    return
                item = self._queue.popleft()
                if isinstance(item, Frame):
                    self._queued_bytes -= item.size
            if isinstance(item, _Close):
                # Peer sees our last reply, then end of stream; the reader stops reading.
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_RDWR)
                return
            try:
                send_frame(self.sock, item)
            except OSError as error:
                self.abort(f"sending failed ({error})")
                return

    # -- incoming ------------------------------------------------------------------------

    def _read(self) -> None:
        server = self.server
        try:
            if self._handshake():
                while not server.closing:
                    body = read_frame(self.sock, MAX_CLIENT_MESSAGE, stop=lambda: server.closing,
                                      frame_timeout_s=server.stall_timeout_s)
                    if body is None:
                        break
                    try:
                        self._handle(_decode(body, CLIENT_KINDS))
                    except ProtocolError as error:
                        self.fail(error)
        except FramingError as error:
            self.fail(error)
        except OSError as error:
            log.info("%s: connection ended (%s)", self.name, error)
        except Exception:   # a bug here must cost one connection, never the core
            log.exception("%s: unexpected failure; closing the connection", self.name)
        finally:
            self._finish()

    def _handshake(self) -> bool:
        server = self.server
        # Nothing is queued to send before the hello, so the timeout may change now.
        self.sock.settimeout(min(server.hello_timeout_s, server.stall_timeout_s))
        try:
            body = read_frame(self.sock, MAX_CLIENT_MESSAGE, wait_s=server.hello_timeout_s,
                              stop=lambda: server.closing,
                              frame_timeout_s=server.hello_timeout_s)
        except IdleTimeout:
            self.fail(FramingError("hello_timeout", f"no hello within "
                                                    f"{server.hello_timeout_s:.0f} s"))
            return False
        if body is None:
            return False
        try:
            hello = _decode(body, frozenset({"hello"}))
        except ProtocolError as error:
            self.fail(FramingError(error.code, f"the first message must be a hello: {error}"))
            return False
        assert isinstance(hello, Hello)
        if hello.version != PROTOCOL_VERSION:
            self.fail(FramingError("version", f"this station core speaks protocol version "
                                              f"{PROTOCOL_VERSION}, the client "
                                              f"{hello.version}: update the client"))
            return False
        self.sock.settimeout(server.stall_timeout_s)
        shown = "".join(ch for ch in hello.client[:60] if ch.isprintable())
        if shown:
            self.name = f"{self.name} ({shown})"
        log.info("%s said hello (protocol %d)", self.name, hello.version)
        server._admit(self, hello.subscribe)
        return True

    def _handle(self, message: Any) -> None:
        if isinstance(message, CommandMessage):
            server = self.server
            with server._drain_lock:      # once drain() returns, no command reaches it
                refusal = server.draining
                if not refusal:
                    server.workflow.submit(message.command)
            if refusal:
                self.reply(ErrorReply("stopping", refusal, message.id))
        elif isinstance(message, StatusRequest):
            self.reply(StatusReply(self.server.status(), message.id))
        else:
            raise ProtocolError("unexpected", "hello was already said on this connection")

    def _finish(self) -> None:
        self.enqueue(_CLOSE)
        self._writer.join(timeout=self.server.stall_timeout_s)
        self.abort()
        self._writer.join(timeout=1.0)
        with contextlib.suppress(OSError):
            self.sock.close()
        self.server._forget(self)
        log.info("%s disconnected", self.name)


def _decode(body: bytearray, allowed: frozenset[str]) -> Any:
    """decode_message, with any other failure on a whole frame turned into a refusal: the
    stream is still in step, so the sender gets an error reply, not a dropped connection."""
    try:
        return decode_message(body, allowed)
    except ProtocolError:
        raise
    except Exception as error:
        log.exception("decoding a client's message failed")
        raise ProtocolError("bad_message", f"the message cannot be read "
                                           f"({type(error).__name__}: {error})") from None


def _peer(sock: socket.socket) -> str:
    """' pid N uid N' of the connecting process (Linux), for the log."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _ = struct.unpack("3i", raw)
        return f" (pid {pid}, uid {uid})"
    except (OSError, AttributeError):
        return ""


class WorkflowServer:
    """Serve ``workflow`` on the Unix socket ``socket_path`` until :meth:`close`.

    ``info`` returns the core's health for ``status`` requests (JSON-able values; others
    are sent as text). The server never closes the workflow: its owner does."""

    def __init__(self, workflow: Any, socket_path: str | os.PathLike[str], *,
                 info: Callable[[], dict] | None = None, max_clients: int = 8,
                 mode: int = 0o660, queue_messages: int = 256,
                 queue_bytes: int = 64 * 1024 * 1024, hello_timeout_s: float = 5.0,
                 stall_timeout_s: float = 10.0) -> None:
        if max_clients < 1:
            raise ValueError(f"max_clients must be at least 1, got {max_clients}")
        self.workflow = workflow
        self.socket_path = Path(socket_path)
        self.info = info
        self.max_clients = max_clients
        self.mode = mode
        self.queue_messages = queue_messages
        self.queue_bytes = queue_bytes
        self.hello_timeout_s = hello_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.closing = False
        self.draining = ""                         # why commands are refused (core stopping)
        self._drain_lock = threading.Lock()
        self._lock = threading.Lock()              # tracked state + who gets events
        self._connections: list[_Connection] = []
        self._subscribers: list[_Connection] = []
        self._last_change: StateChanged | None = None
        self._verdict: VerdictReady | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._listener: socket.socket | None = None
        self._bound: tuple[int, int] | None = None
        self._wake_r, self._wake_w = -1, -1
        self._acceptor: threading.Thread | None = None
        self._count = 0

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> WorkflowServer:
        """Listen on the socket (a stale socket file is replaced; a live one is an error)."""
        if self._listener is not None:
            raise RuntimeError("the server is already started")
        listener = self._bind()
        with self._lock:
            self._unsubscribe = self.workflow.subscribe(self._on_event)
            if self._last_change is None:
                state = self.workflow.state
                self._last_change = StateChanged(state, state, "", None)
        listener.listen(self.max_clients + 4)
        self._listener = listener
        self._wake_r, self._wake_w = os.pipe()
        self._acceptor = threading.Thread(target=self._accept_forever, name="service-accept",
                                          daemon=True)
        self._acceptor.start()
        log.info("serving the inspection workflow on %s (protocol %d)", self.socket_path,
                 PROTOCOL_VERSION)
        return self

    def drain(self, reason: str = "the station core is stopping; try again when it is "
                                   "back") -> None:
        """Refuse every command from now on (an ErrorReply with code "stopping" and
        ``reason``) while events and status requests are still served: the core stops
        taking work before it waits for the step in progress to finish."""
        with self._drain_lock:
            self.draining = reason or "the station core is stopping"
        log.info("no longer passing commands to the workflow: %s", self.draining)

    def close(self) -> None:
        """Stop serving: end every connection, remove the socket file; the workflow runs on."""
        if self.closing:
            return
        self.closing = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
        if self._acceptor is not None:
            self._acceptor.join(timeout=5.0)
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.abort()
        for connection in connections:
            connection.reader.join(timeout=5.0)
        if self._listener is not None:
            self._listener.close()
            self._remove_own_socket()
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def __enter__(self) -> WorkflowServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def client_count(self) -> int:
        with self._lock:
            return len(self._connections)

    def status(self) -> dict[str, Any]:
        """``info()`` plus what the server knows; what a ``status`` request returns."""
        status: dict[str, Any] = {}
        if self.info is not None:
            try:
                status.update(self.info())
            except Exception as error:
                log.exception("status info failed")
                status["info_error"] = f"{type(error).__name__}: {error}"
        with self._lock:
            state = self._last_change.new if self._last_change else self.workflow.state
            status.update(protocol_version=PROTOCOL_VERSION, workflow_state=state.value,
                          clients=len(self._connections))
        return status

    # -- socket file ---------------------------------------------------------------------

    def _bind(self) -> socket.socket:
        path = self.socket_path
        if len(os.fsencode(path)) > MAX_SOCKET_PATH:
            raise StationError(f"socket path {path} is {len(os.fsencode(path))} bytes; Unix "
                               f"sockets allow {MAX_SOCKET_PATH}: choose a shorter path")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._remove_stale()
        except OSError as error:
            raise StationError(f"cannot use the folder {path.parent} for the socket "
                               f"{path.name}: {error.strerror or error}; make it a folder "
                               "the core may "
                               "write to, or set service.socket_path to another path") \
                from error
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(os.fspath(path))
            # Nobody can connect before listen(), so the mode is set before anyone could.
            os.chmod(path, self.mode)
            info = os.stat(path)
            self._bound = (info.st_dev, info.st_ino)
        except OSError as error:
            listener.close()
            raise StationError(f"cannot listen on {path}: {error.strerror or error}; check "
                               "the folder's permissions") from error
        return listener

    def _remove_stale(self) -> None:
        path = self.socket_path
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(info.st_mode):
            raise StationError(f"{path} exists and is not a socket: remove it or choose "
                               "another socket path")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(os.fspath(path))
        except (ConnectionRefusedError, FileNotFoundError):
            log.info("removing the stale socket %s (no process serves it)", path)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return
        except OSError as error:
            raise StationError(f"cannot check the existing socket {path}: "
                               f"{error.strerror or error}") from error
        finally:
            probe.close()
        raise StationError(f"another station core already serves {path}; stop it first")

    def _remove_own_socket(self) -> None:
        with contextlib.suppress(OSError):
            info = os.stat(self.socket_path)
            if (info.st_dev, info.st_ino) == self._bound:
                self.socket_path.unlink()

    # -- connections ---------------------------------------------------------------------

    def _accept_forever(self) -> None:
        assert self._listener is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self.closing:
                selector.select()
                if self.closing:
                    return
                try:
                    sock, _ = self._listener.accept()
                except OSError as error:
                    log.warning("accept failed: %s", error)
                    continue
                self._open(sock)

    def _open(self, sock: socket.socket) -> None:
        sock.settimeout(self.stall_timeout_s)
        with self._lock:
            self._count += 1
            full = len(self._connections) >= self.max_clients
            connection = _Connection(self, sock, self._count)
            if not full:
                self._connections.append(connection)
        if full:
            log.warning("%s refused: %d clients already connected", connection.name,
                        self.max_clients)
            with contextlib.suppress(OSError):
                sock.settimeout(1.0)
                send_frame(sock, encode_message(ErrorReply(
                    "too_many_clients", f"the station core serves at most {self.max_clients} "
                                        "clients at a time; close another one")))
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
            return
        log.info("%s connected", connection.name)
        connection.start()

    def _admit(self, connection: _Connection, subscribe: bool) -> None:
        """Welcome, then (subscribed) the snapshot and every event from now on, in order."""
        with self._lock:
            connection.enqueue(encode_message(Welcome(PROTOCOL_VERSION)))
            if not subscribe:
                return
            assert self._last_change is not None
            try:
                frame = encode_message(Snapshot(self._last_change, self._verdict))
            except ProtocolError:
                log.exception("cannot encode the snapshot; sending it without the verdict")
                frame = encode_message(Snapshot(self._last_change, None))
            connection.enqueue(frame)
            connection.subscribed = True
            self._subscribers.append(connection)

    def _forget(self, connection: _Connection) -> None:
        with self._lock:
            with contextlib.suppress(ValueError):
                self._connections.remove(connection)
            with contextlib.suppress(ValueError):
                self._subscribers.remove(connection)

    # -- events (on the workflow's thread: never wait here) ------------------------------

    def _on_event(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, StateChanged):
                self._last_change = event
                if event.new is not State.VERDICT_SHOWN:
                    self._verdict = None
            elif isinstance(event, VerdictReady):
                self._verdict = event
            if not self._subscribers:
                return
            try:
                frame = encode_message(EventMessage(event))
            except ProtocolError:
                log.exception("cannot encode %r for the front ends", event)
                return
            overflowed = [c for c in self._subscribers if not c.enqueue(frame)]
            for connection in overflowed:
                self._subscribers.remove(connection)
        for connection in overflowed:
            connection.abort(f"it is not reading events (queue over "
                             f"{self.queue_messages} messages or "
                             f"{self.queue_bytes // (1024 * 1024)} MiB); it gets a fresh "
                             "snapshot when it reconnects")
