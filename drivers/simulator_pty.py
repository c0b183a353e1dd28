"""A pseudo-terminal that a device simulator serves, so drivers open a real serial device path.

``pty.openpty()`` gives a master and a slave end; the slave (``/dev/pts/N``) is what a
driver opens with pyserial, exactly as it would open ``/dev/ttyUSB0``. A daemon thread
reads the driver's bytes from the master end, hands them to a device handler and writes
the handler's answer back.

Faults a real line has are injected here, independent of the device: go silent, corrupt
the next reply (garbage, a dropped prompt), write unsolicited bytes, and unplug/replug.
A pty path cannot be re-created at will, so a simulator given a ``link_path`` publishes
itself as a symlink to its current ``/dev/pts/N``; ``unplug()`` closes the pty and removes
the link, ``replug()`` opens a fresh pty and re-points the link. That is how udev's
stable names (``/dev/serial/by-id/...``) behave when a USB-serial adapter comes back.
"""

from __future__ import annotations

import collections
import errno
import logging
import os
import pty
import select
import threading
import time
import tty
from pathlib import Path
from types import TracebackType
from typing import Callable, Protocol

log = logging.getLogger(__name__)

ReplyTransform = Callable[[bytes], bytes]

_PACED_CHUNK = 8  # bytes per write when pacing a slow line


class ByteHandler(Protocol):
    """A device model: takes the bytes the driver sent, returns the bytes to answer."""

    def feed(self, data: bytes) -> bytes: ...


class PtySimulator:
    """Serves ``handler`` on a pseudo-terminal; ``port`` is the path a driver opens."""

    def __init__(self, handler: ByteHandler | None = None, *,
                 link_path: str | os.PathLike[str] | None = None, name: str = "device",
                 bytes_per_s: float | None = None) -> None:
        self.handler = handler
        # A pty moves bytes instantly; a real line trickles them (115200 8N1: 11 520 B/s).
        # Set this to make replies arrive in paced chunks, as slow lines deliver them.
        self.bytes_per_s = bytes_per_s
        self.link_path = Path(link_path) if link_path is not None else None
        self.name = name
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._silent = False
        self._transforms: collections.deque[ReplyTransform] = collections.deque()
        self._master: int | None = None
        self._slave: int | None = None
        self._device_path: str | None = None
        self._wake_w: int | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------

    @property
    def port(self) -> str:
        """The path a driver should open: the stable link if there is one, else the pty."""
        if self.link_path is not None:
            return str(self.link_path)
        if self._device_path is None:
            raise RuntimeError(f"{self.name} simulator is not started")
        return self._device_path

    @property
    def device_path(self) -> str | None:
        """The current ``/dev/pts/N``, or None while unplugged."""
        return self._device_path

    @property
    def is_plugged(self) -> bool:
        return self._master is not None

    def start(self) -> PtySimulator:
        if self._master is None:
            self._plug()
        return self

    def stop(self) -> None:
        """Unplug and remove the stable link; safe to call twice."""
        self.unplug()

    def __enter__(self) -> PtySimulator:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    # -- fault injection -------------------------------------------------------------

    def go_silent(self) -> None:
        """Keep reading what the driver sends, but answer nothing (a hung device)."""
        self._silent = True

    def resume(self) -> None:
        self._silent = False

    def corrupt_next_reply(self, transform: ReplyTransform) -> None:
        """Pass the next non-empty reply through ``transform`` before it goes on the line."""
        with self._lock:
            self._transforms.append(transform)

    def inject(self, data: bytes) -> None:
        """Write ``data`` to the driver now, unasked (noise, or a scanner's line)."""
        self._write(data)

    def unplug(self) -> None:
        """Close the pty as a pulled USB adapter would; the driver's next I/O fails."""
        thread, wake_w = self._thread, self._wake_w
        if wake_w is not None:
            os.write(wake_w, b"x")
        if thread is not None:
            thread.join(timeout=2.0)
        with self._write_lock:
            for fd in (self._master, self._slave, self._wake_w):
                if fd is not None:
                    os.close(fd)
            self._master = self._slave = self._wake_w = None
            self._thread = None
            self._device_path = None
        if self.link_path is not None:
            self.link_path.unlink(missing_ok=True)

    def replug(self) -> None:
        """Come back on a fresh pty; the stable link (if any) points at it again."""
        self.unplug()
        self._plug()

    # -- internals -------------------------------------------------------------------

    def _plug(self) -> None:
        master, slave = pty.openpty()
        tty.setraw(slave)  # no echo, no CR/LF translation: bytes pass as on a real line
        os.set_blocking(master, False)
        wake_r, wake_w = os.pipe()
        self._master, self._slave, self._wake_w = master, slave, wake_w
        self._device_path = os.ttyname(slave)
        if self.link_path is not None:
            staging = self.link_path.with_name(self.link_path.name + ".new")
            staging.unlink(missing_ok=True)
            staging.symlink_to(self._device_path)
            os.replace(staging, self.link_path)  # atomic: the link never points nowhere
        self._thread = threading.Thread(target=self._serve, args=(master, wake_r),
                                        name=f"pty-{self.name}", daemon=True)
        self._thread.start()
        log.debug("%s simulator serving on %s", self.name, self.port)

    def _serve(self, master: int, wake_r: int) -> None:
        try:
            while True:
                ready, _, _ = select.select([master, wake_r], [], [])
                if wake_r in ready:
                    return
                try:
                    data = os.read(master, 4096)
                except BlockingIOError:
                    continue
                except OSError as error:  # EIO: the pty is going away
                    log.debug("%s simulator read: %s", self.name, error)
                    return
                if not data or self.handler is None or self._silent:
                    continue  # a hung device neither acts on nor answers what it receives
                reply = self.handler.feed(data)
                if reply:
                    with self._lock:
                        transform = self._transforms.popleft() if self._transforms else None
                    if transform is not None:
                        reply = transform(reply)
                    self._write(reply)
        finally:
            os.close(wake_r)

    def _write(self, data: bytes, timeout_s: float = 1.0) -> None:
        """Write to the master end; drop what a driver that never reads leaves unsent."""
        with self._write_lock:
            master = self._master
            if master is None:
                return
            view = memoryview(data)
            while view:
                chunk = view
                if self.bytes_per_s:
                    chunk = view[:_PACED_CHUNK]
                    time.sleep(len(chunk) / self.bytes_per_s)
                try:
                    written = os.write(master, chunk)
                    view = view[written:]
                except BlockingIOError:
                    _, writable, _ = select.select([], [master], [], timeout_s)
                    if not writable:
                        log.warning("%s simulator: driver not reading, dropped %d bytes",
                                    self.name, len(view))
                        return
                except OSError as error:
                    if error.errno != errno.EIO:
                        raise
                    return
