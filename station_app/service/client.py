"""A front end's side of the core socket, shaped like the workflow it stands in for.

:class:`WorkflowClient` has the workflow's front-end surface (``submit``, ``subscribe``,
``state``), so the operator window drives a core in another process exactly as it drives
an in-process :class:`~station_app.workflow.InspectionWorkflow`. Listeners are called on
one background thread, in the order the core sent the events.

It keeps trying: when the core is not there yet or restarts, the client reconnects with
backoff and tells its listeners with :class:`CoreConnection` events. After every
(re)connection a listener gets ``CoreConnection(True, ...)``, the verdict on screen (if
any) and the core's last ``StateChanged``, so the screen shows what the associate was
looking at. A listener that subscribes later gets the same catch-up first, so nothing
depends on subscribing before the connection comes up.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import os
import queue
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from station_app.errors import StationError
from station_app.service.protocol import (MAX_CLIENT_MESSAGE, MAX_SERVER_MESSAGE,
                                          PROTOCOL_VERSION, SERVER_KINDS, CommandMessage,
                                          ErrorReply, EventMessage, FramingError, Hello,
                                          IdleTimeout, ProtocolError, Snapshot, StatusReply,
                                          StatusRequest, Welcome, decode_message,
                                          encode_message, read_frame, send_frame)
from station_app.workflow.commands import PUBLIC_COMMANDS, Command
from station_app.workflow.events import CommandIgnored, StateChanged, VerdictReady
from station_app.workflow.states import State

log = logging.getLogger("station_app.service.client")


@dataclass(frozen=True)
class CoreConnection:
    """Not a workflow event: the link to the station core came up (``connected``) or went
    down; ``message`` says so in words for the screen."""

    connected: bool
    message: str


Listener = Callable[[Any], None]


class _CoreRefused(Exception):
    """The core answered the hello with an error (e.g. another protocol version)."""


@dataclass
class _Subscription:
    listener: Listener
    active: bool = True


@dataclass
class _Pending:
    done: threading.Event
    result: dict[str, Any] | None = None
    error: str = ""


_STOP = object()


class WorkflowClient:
    """The station core's workflow, reached over its Unix socket (see module doc)."""

    def __init__(self, socket_path: str | os.PathLike[str], *, name: str = "front end",
                 reconnect_min_s: float = 0.1, reconnect_max_s: float = 2.0,
                 handshake_timeout_s: float = 5.0, stall_timeout_s: float = 30.0) -> None:
        self.socket_path = Path(socket_path)
        self.name = name
        self._reconnect = (reconnect_min_s, reconnect_max_s)
        self._handshake_timeout_s = handshake_timeout_s
        self._stall_timeout_s = stall_timeout_s
        self._closed = threading.Event()
        self._sock: socket.socket | None = None      # set while connected (handshake done)
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._sent: collections.OrderedDict[int, str] = collections.OrderedDict()
        self._sent_lock = threading.Lock()              # _sent: written by submit, read here
        self._pending: dict[int, _Pending] = {}
        self._connected = threading.Event()
        # Owned by the delivery thread: what listeners have been told so far.
        self._state: State | None = None
        self._last_change: StateChanged | None = None
        self._verdict: VerdictReady | None = None
        self._link = CoreConnection(False, f"connecting to the station core at "
                                           f"{self.socket_path}")
        self._subscriptions: list[_Subscription] = []
        self._subscriptions_lock = threading.Lock()
        self._deliveries: queue.Queue[Any] = queue.Queue()
        self._delivery = threading.Thread(target=self._deliver_forever,
                                          name="core-client-deliver", daemon=True)
        self._connection = threading.Thread(target=self._connect_forever,
                                            name="core-client-connect", daemon=True)
        self._delivery.start()
        self._connection.start()

    # -- the workflow's surface ------------------------------------------------------------

    @property
    def state(self) -> State | None:
        """The core's state as listeners last heard it; None before the first connection."""
        return self._state

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` (on the client's thread) with a catch-up, then every event and
        every :class:`CoreConnection` change; returns an unsubscribe function."""
        subscription = _Subscription(listener)
        self._deliveries.put(("subscribe", subscription))

        def unsubscribe() -> None:
            subscription.active = False
            with self._subscriptions_lock, contextlib.suppress(ValueError):
                self._subscriptions.remove(subscription)
        return unsubscribe

    def submit(self, command: Command) -> None:
        """Send a command and return at once; its effects arrive as events. Without a
        connection the command is not queued: listeners get a CommandIgnored saying so."""
        if not isinstance(command, PUBLIC_COMMANDS):
            raise TypeError(f"not a workflow command: {command!r}")
        name = type(command).__name__
        with self._send_lock:
            sock = self._sock
            if sock is None:
                self._ignored(name, f"not connected to the station core ({self._link.message})")
                return
            request = next(self._ids)
            try:
                frame = encode_message(CommandMessage(command, request), MAX_CLIENT_MESSAGE)
            except ProtocolError as error:
                self._ignored(name, f"cannot send it: {error}")
                return
            with self._sent_lock:
                self._sent[request] = name
                while len(self._sent) > 256:
                    self._sent.popitem(last=False)
            try:
                send_frame(sock, frame)
            except OSError as error:
                self._ignored(name, f"the connection to the station core broke ({error})")
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def request_status(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """The core's health (its ``info()`` plus protocol version, workflow state and
        client count); StationError when not connected or no answer in time."""
        with self._send_lock:
            sock = self._sock
            if sock is None:
                raise StationError(f"not connected to the station core: {self._link.message}")
            request = next(self._ids)
            pending = self._pending[request] = _Pending(threading.Event())
            try:
                send_frame(sock, encode_message(StatusRequest(request), MAX_CLIENT_MESSAGE))
            except OSError as error:
                self._pending.pop(request, None)
                raise StationError(f"the connection to the station core broke: {error}") \
                    from error
        try:
            if not pending.done.wait(timeout_s):
                raise StationError(f"the station core did not answer a status request within "
                                   f"{timeout_s:g} s")
        finally:
            self._pending.pop(request, None)
        if pending.result is None:
            raise StationError(f"status request failed: {pending.error}")
        return pending.result

    def wait_connected(self, timeout_s: float = 10.0) -> bool:
        """True once connected (snapshot received); for start-up and tests."""
        return self._connected.wait(timeout_s)

    def close(self) -> None:
        """Disconnect and stop the client's threads; the core and its inspection go on."""
        if self._closed.is_set():
            return
        self._closed.set()
        with self._send_lock:
            sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._connection.join(timeout=5.0)
        self._deliveries.put(_STOP)
        if threading.current_thread() is not self._delivery:
            self._delivery.join(timeout=5.0)

    def __enter__(self) -> WorkflowClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- connection thread -----------------------------------------------------------------

    def _connect_forever(self) -> None:
        delay = self._reconnect[0]
        while not self._closed.is_set():
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self._handshake_timeout_s)
            try:
                sock.connect(os.fspath(self.socket_path))
            except OSError as error:
                sock.close()
                self._link_down(f"station core not reachable at {self.socket_path} "
                                f"({error.strerror or error}); retrying")
                self._closed.wait(delay)
                delay = min(delay * 2, self._reconnect[1])
                continue
            try:
                self._session(sock)
                reason = "the station core closed the connection"
            except _CoreRefused as error:
                reason = f"the station core refused this client: {error}"
            except (ProtocolError, IdleTimeout) as error:
                reason = f"the station core's messages broke off: {error}"
            except OSError as error:
                reason = f"connection to the station core lost ({error.strerror or error})"
            except Exception as error:   # a bug or an unforeseen input: reconnect, never die
                log.exception("the connection to the station core failed")
                reason = f"the connection to the station core failed " \
                         f"({type(error).__name__}: {error})"
            finally:
                was_up = self._connected.is_set()
                with self._send_lock:
                    self._sock = None
                self._connected.clear()
                with contextlib.suppress(OSError):
                    sock.close()
                for pending in list(self._pending.values()):
                    pending.error = "the connection to the station core was lost"
                    pending.done.set()
            if self._closed.is_set():
                return
            self._link_down(f"{reason}; reconnecting")
            if was_up:
                delay = self._reconnect[0]
            self._closed.wait(delay)
            delay = min(delay * 2, self._reconnect[1])

    def _session(self, sock: socket.socket) -> None:
        """Hello, welcome, snapshot, then events until the connection ends."""
        send_frame(sock, encode_message(Hello(PROTOCOL_VERSION, self.name), MAX_CLIENT_MESSAGE))
        welcome = self._next(sock, self._handshake_timeout_s)
        if isinstance(welcome, ErrorReply):
            raise _CoreRefused(welcome.message)
        if not isinstance(welcome, Welcome):
            raise ProtocolError("unexpected", f"expected a welcome, got {welcome!r}")
        snapshot = self._next(sock, self._handshake_timeout_s)
        if not isinstance(snapshot, Snapshot):
            raise ProtocolError("unexpected", f"expected a snapshot, got {snapshot!r}")
        sock.settimeout(self._stall_timeout_s)
        with self._send_lock:
            self._sock = sock
        self._deliveries.put(("snapshot", snapshot))
        self._connected.set()
        log.info("connected to the station core at %s", self.socket_path)
        while not self._closed.is_set():
            try:
                message = self._next(sock, None)
            except FramingError:
                raise
            except ProtocolError as error:    # one bad message; the stream is still in step
                log.warning("ignoring a message from the station core: %s", error)
                continue
            if message is None:
                return
            self._receive(message)

    def _next(self, sock: socket.socket, wait_s: float | None) -> Any:
        body = read_frame(sock, MAX_SERVER_MESSAGE, wait_s=wait_s, stop=self._closed.is_set)
        if body is None:
            if wait_s is not None and not self._closed.is_set():
                raise OSError("the station core closed the connection during the handshake")
            return None
        return decode_message(body, SERVER_KINDS)

    def _receive(self, message: Any) -> None:
        if isinstance(message, EventMessage):
            self._deliveries.put(("event", message.event))
        elif isinstance(message, StatusReply):
            pending = self._pending.get(message.id) if message.id is not None else None
            if pending is not None:
                pending.result = message.status
                pending.done.set()
        elif isinstance(message, ErrorReply):
            pending = self._pending.get(message.id) if message.id is not None else None
            if pending is not None:
                pending.error = message.message
                pending.done.set()
            else:
                with self._sent_lock:
                    command = self._sent.get(message.id) if message.id is not None else None
                if command is not None:
                    self._ignored(command, f"the station core refused it: {message.message}")
                    return
                log.warning("station core reports an error: %s (%s)", message.message,
                            message.code)
        else:
            log.warning("unexpected message from the station core: %r", message)

    def _link_down(self, message: str) -> None:
        self._deliveries.put(("link", CoreConnection(False, message)))

    def _ignored(self, command: str, reason: str) -> None:
        self._deliveries.put(("ignored", command, reason))

    # -- delivery thread: the only writer of what listeners were told ----------------------

    def _deliver_forever(self) -> None:
        while True:
            item = self._deliveries.get()
            if item is _STOP:
                return
            try:
                self._deliver(item)
            except Exception:
                log.exception("delivering %r failed", item)

    def _deliver(self, item: tuple) -> None:
        what = item[0]
        if what == "subscribe":
            subscription = item[1]
            if subscription.active:
                for event in self._catch_up():
                    self._call(subscription.listener, event)
                with self._subscriptions_lock:
                    if subscription.active:
                        self._subscriptions.append(subscription)
        elif what == "snapshot":
            snapshot: Snapshot = item[1]
            self._link = CoreConnection(True, f"connected to the station core at "
                                              f"{self.socket_path}")
            self._verdict = snapshot.verdict
            self._apply(snapshot.state_change)
            for event in self._catch_up():
                self._emit(event)
        elif what == "event":
            self._apply(item[1])
            self._emit(item[1])
        elif what == "link":
            if item[1] != self._link:
                self._link = item[1]
                log.warning("%s", item[1].message)
                self._emit(item[1])
        elif what == "ignored":
            self._emit(CommandIgnored(item[1], self._state or State.SIGNED_OUT, item[2]))

    def _catch_up(self) -> list[Any]:
        events: list[Any] = [self._link]
        if self._link.connected:
            if self._verdict is not None:
                events.append(self._verdict)
            if self._last_change is not None:
                events.append(self._last_change)
        return events

    def _apply(self, event: Any) -> None:
        if isinstance(event, StateChanged):
            self._state, self._last_change = event.new, event
            if event.new is not State.VERDICT_SHOWN:
                self._verdict = None
        elif isinstance(event, VerdictReady):
            self._verdict = event

    def _emit(self, event: Any) -> None:
        with self._subscriptions_lock:
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            self._call(subscription.listener, event)

    @staticmethod
    def _call(listener: Listener, event: Any) -> None:
        try:
            listener(event)
        except Exception:
            log.exception("listener %r failed on %r", listener, event)


def query_status(socket_path: str | os.PathLike[str], timeout_s: float = 3.0,
                 name: str = "status") -> dict[str, Any]:
    """One status request on a short connection that takes no events (``station-app
    status``); StationError naming the cause when the core cannot be asked."""
    path = os.fspath(socket_path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        try:
            sock.connect(path)
        except OSError as error:
            raise StationError(f"station core not reachable at {path} "
                               f"({error.strerror or error}): is the service running?") from error
        try:
            send_frame(sock, encode_message(Hello(PROTOCOL_VERSION, name, subscribe=False),
                                            MAX_CLIENT_MESSAGE))
            send_frame(sock, encode_message(StatusRequest(1), MAX_CLIENT_MESSAGE))
            while True:
                body = read_frame(sock, MAX_SERVER_MESSAGE, wait_s=timeout_s)
                if body is None:
                    raise StationError(f"the station core at {path} closed the connection "
                                       "without answering")
                message = decode_message(body, SERVER_KINDS)
                if isinstance(message, ErrorReply):
                    raise StationError(f"the station core refused the status request: "
                                       f"{message.message}")
                if isinstance(message, StatusReply):
                    return message.status
        except (OSError, IdleTimeout) as error:
            raise StationError(f"no status from the station core at {path} within "
                               f"{timeout_s:g} s ({error})") from error
    finally:
        sock.close()
