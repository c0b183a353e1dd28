"""A small sd_notify client: tells systemd when the core is ready, healthy or stopping.

systemd passes ``NOTIFY_SOCKET`` to a ``Type=notify`` service: a filesystem path or, when
it starts with ``@``, a Linux abstract socket. Each message is one datagram of
``KEY=VALUE`` lines (``READY=1``, ``STATUS=...``, ``WATCHDOG=1``, ``STOPPING=1``,
``ERRNO=...``). With ``WatchdogSec=`` set, systemd also passes ``WATCHDOG_USEC`` (and
``WATCHDOG_PID``, the process it is meant for) and restarts the service when no
``WATCHDOG=1`` arrives within that time.

Outside systemd (no ``NOTIFY_SOCKET``) every call does nothing, so the same core runs
from a terminal. Written here rather than taken from a package because it is forty lines
of socket code whose behaviour (abstract sockets, the PID check) the tests pin down.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Mapping, MutableMapping

log = logging.getLogger("station_app.service.notify")


def _address(value: str) -> str | bytes | None:
    """The socket address ``NOTIFY_SOCKET`` names, or None when it names none we can use."""
    if value.startswith("@"):
        return b"\0" + os.fsencode(value[1:])       # abstract namespace (Linux)
    if value.startswith("/"):
        return value
    return None


class SystemdNotifier:
    """Sends notifications to systemd's ``NOTIFY_SOCKET``; a no-op when there is none.

    Build it with :meth:`from_environment`. A failed send is logged (once per kind of
    failure) and never raised: the station keeps inspecting; if systemd really cannot
    hear us it acts on its own (start timeout, watchdog).
    """

    def __init__(self, address: str | bytes | None, *, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._reported_errors: set[str] = set()

    @classmethod
    def from_environment(cls, environ: MutableMapping[str, str] | Mapping[str, str] | None = None,
                         *, unset: bool = False) -> SystemdNotifier:
        """From ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID``.

        ``unset`` removes those variables from ``environ`` (like sd_notify's
        ``unset_environment``) so that programs the core starts do not notify for it.
        """
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        address = _address(raw) if raw else None
        if raw and address is None:
            log.warning("NOTIFY_SOCKET=%r is neither an absolute path nor an abstract socket "
                        "(@name); systemd notifications are off", raw)
        watchdog_usec = watchdog_interval_usec(env)
        if unset and isinstance(env, MutableMapping):
            for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
                env.pop(name, None)
        return cls(address, watchdog_usec=watchdog_usec)

    @property
    def enabled(self) -> bool:
        """True when running under systemd with a notify socket."""
        return self.address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """systemd's watchdog timeout in seconds, or None when no watchdog is set for us."""
        return self.watchdog_usec / 1e6 if self.watchdog_usec else None

    # -- messages ----------------------------------------------------------------------

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` lines as one datagram; True when it was sent."""
        if self.address is None or not assignments:
            return False
        for line in assignments:
            if "=" not in line:
                raise ValueError(f"a notification is KEY=VALUE, got {line!r}")
        payload = "\n".join(assignments).encode("utf-8")
        with self._lock:
            try:
                if self._socket is None:
                    self._socket = socket.socket(socket.AF_UNIX,
                                                 socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._socket.sendto(payload, self.address)
                return True
            except OSError as error:
                kind = type(error).__name__
                if kind not in self._reported_errors:
                    self._reported_errors.add(kind)
                    log.warning("cannot notify systemd at %r: %s", self.address, error)
                return False

    def ready(self, status: str | None = None) -> bool:
        """Start-up is complete: systemd marks the unit active and starts the watchdog."""
        return self.notify("READY=1", *self._status_line(status))

    def status(self, text: str) -> bool:
        """One line for ``systemctl status``: what the core is doing or what is wrong."""
        return self.notify(*self._status_line(text))

    def watchdog(self) -> bool:
        """Pet the watchdog: the core's main loop is alive and the station is healthy."""
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *self._status_line(status))

    def errno(self, code: int, status: str | None = None) -> bool:
        """The error the core is failing with (shown by ``systemctl status``)."""
        return self.notify(*self._status_line(status), f"ERRNO={int(code)}")

    def close(self) -> None:
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None

    @staticmethod
    def _status_line(text: str | None) -> tuple[str, ...]:
        if text is None:
            return ()
        return ("STATUS=" + " ".join(text.split()),)   # one line: a newline ends the field


def watchdog_interval_usec(environ: Mapping[str, str] | None = None) -> int | None:
    """``WATCHDOG_USEC`` when the watchdog is meant for this process (``WATCHDOG_PID``
    unset or our PID), else None; like ``sd_watchdog_enabled``."""
    env = os.environ if environ is None else environ
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    return usec
