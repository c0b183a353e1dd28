"""One serial port, opened by path, that devices own and talk through (composition).

It hides pyserial's exceptions behind the driver errors: a vanished port becomes
:class:`DeviceDisconnected`, a silent one :class:`DeviceTimeout`. Reads are framed by
terminator bytes against an overall deadline, so a device that trickles bytes can never
stretch a read past the time the caller allowed. Bytes that arrive after a frame's
terminator are kept for the next read, never lost.
"""

from __future__ import annotations

import logging
import termios
import time
from types import TracebackType

import serial

from drivers.errors import DeviceDisconnected, DeviceTimeout

log = logging.getLogger(__name__)

# Errors pyserial and the OS raise when a port is gone or unusable.
_PORT_ERRORS = (serial.SerialException, OSError, termios.error)


class SerialLink:
    """A serial port at ``port`` (a device path or a stable symlink to one), 8N1."""

    def __init__(self, port: str, *, baudrate: int = 115200, poll_s: float = 0.05,
                 write_timeout_s: float = 1.0) -> None:
        self.port = str(port)
        self.baudrate = baudrate
        # Longest single wait inside a read; deadlines are enforced on top of it.
        self.poll_s = poll_s
        self.write_timeout_s = write_timeout_s
        self._serial: serial.Serial | None = None
        self._buffer = bytearray()

    # -- lifecycle -------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._serial is not None and self._serial.is_open

    def open(self) -> SerialLink:
        """Open the port; raise :class:`DeviceDisconnected` when it is missing or busy."""
        if self.is_open:
            return self
        try:
            self._serial = serial.Serial(
                self.port, self.baudrate, bytesize=serial.EIGHTBITS, parity=serial.PARITY_NONE,
                stopbits=serial.STOPBITS_ONE, timeout=self.poll_s,
                write_timeout=self.write_timeout_s, exclusive=True)
        except _PORT_ERRORS as error:
            self._serial = None
            raise DeviceDisconnected(f"cannot open serial port {self.port}: {error}") from error
        self._buffer.clear()
        return self

    def close(self) -> None:
        """Close the port; safe to call twice and on a port whose device has vanished."""
        port, self._serial = self._serial, None
        self._buffer.clear()
        if port is not None:
            try:
                port.close()
            except _PORT_ERRORS as error:  # closing a dead port must not mask the real fault
                log.debug("closing %s: %s", self.port, error)

    def reopen(self, timeout_s: float, retry_every_s: float = 0.05) -> None:
        """Close, then retry opening the same path until ``timeout_s`` has passed.

        A USB-serial adapter that is re-plugged comes back under its stable name after a
        moment, so one failed open is not the end.
        """
        self.close()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.open()
                return
            except DeviceDisconnected as error:
                if time.monotonic() >= deadline:
                    raise DeviceDisconnected(
                        f"serial port {self.port} did not come back within {timeout_s:g} s: "
                        f"{error}") from error
            time.sleep(retry_every_s)

    def __enter__(self) -> SerialLink:
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    # -- I/O -------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        port = self._require_open()
        try:
            port.write(data)
        except serial.SerialTimeoutException as error:
            raise DeviceTimeout(f"write to {self.port} did not drain within "
                                f"{self.write_timeout_s:g} s") from error
        except _PORT_ERRORS as error:
            self.close()
            raise DeviceDisconnected(f"write to {self.port} failed: {error}") from error

    def read_until(self, terminators: bytes | tuple[bytes, ...], timeout_s: float) -> bytes:
        """Return the bytes up to and including the first terminator that arrives.

        On timeout raise :class:`DeviceTimeout`; a partial frame stays buffered (see
        :meth:`discard_input`), so a caller can tell "silent" from "no terminator".
        """
        if isinstance(terminators, bytes):
            terminators = (terminators,)
        deadline = time.monotonic() + timeout_s
        while True:
            frame = self._take_frame(terminators)
            if frame is not None:
                return frame
            if time.monotonic() >= deadline:
                raise DeviceTimeout(f"no complete reply from {self.port} within {timeout_s:g} s")
            self._buffer += self._read_available()

    def peek_input(self) -> bytes:
        """Bytes received but not yet returned by a read (e.g. a line still missing its end)."""
        return bytes(self._buffer)

    def discard_input(self) -> bytes:
        """Drop everything received but not yet read, and return it (for error messages)."""
        port = self._require_open()
        try:
            waiting = port.in_waiting
            if waiting:
                self._buffer += port.read(waiting)
            port.reset_input_buffer()
        except _PORT_ERRORS as error:
            self.close()
            raise DeviceDisconnected(f"serial port {self.port} failed: {error}") from error
        dropped = bytes(self._buffer)
        self._buffer.clear()
        return dropped

    def drain_until_quiet(self, quiet_s: float, timeout_s: float) -> bytes:
        """Read and drop bytes until the line has been quiet for ``quiet_s`` (bounded).

        Used to resynchronise after noise: the rest of a garbled reply must not be taken
        as the answer to the next command.
        """
        dropped = bytearray(self.discard_input())
        deadline = time.monotonic() + timeout_s
        last_byte = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last_byte < quiet_s:
            chunk = self._read_available()
            if chunk:
                dropped += chunk
                last_byte = time.monotonic()
        return bytes(dropped)

    # -- internals -------------------------------------------------------------------

    def _require_open(self) -> serial.Serial:
        if self._serial is None or not self._serial.is_open:
            raise DeviceDisconnected(f"serial port {self.port} is not open")
        return self._serial

    def _read_available(self) -> bytes:
        """Wait at most ``poll_s`` for bytes; return whatever is there (maybe nothing)."""
        port = self._require_open()
        try:
            return port.read(max(1, port.in_waiting))
        except _PORT_ERRORS as error:
            self.close()
            raise DeviceDisconnected(f"serial port {self.port} failed: {error}") from error

    def _take_frame(self, terminators: tuple[bytes, ...]) -> bytes | None:
        ends = [self._buffer.find(t) + len(t) for t in terminators if t in self._buffer]
        if not ends:
            return None
        end = min(ends)
        frame = bytes(self._buffer[:end])
        del self._buffer[:end]
        return frame
