"""A barcode scanner on a serial port: one code per line, validated before anyone sees it.

Scanners end lines with CR, LF or CR LF depending on their configuration; all three
are accepted and blank lines are ignored. Valid codes are delivered as
:class:`ScannedCode`; bad scans (noise, misreads, wrong check digit) are never passed
on, but reported as :class:`ScanRejected` events to ``on_rejected`` so the station can
tell the associate to scan again.

Use :meth:`SerialScanner.read_code` from your own loop, or :meth:`SerialScanner.start`
for a background thread that calls ``on_code`` (and reopens the port if the scanner is
unplugged and comes back).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Callable

from drivers.errors import DeviceDisconnected, DeviceTimeout, DriverError
from drivers.scanner.codes import CodeRules, InvalidCode, RejectReason, validate_code
from drivers.serial_link import SerialLink

log = logging.getLogger(__name__)

LINE_ENDINGS = (b"\r", b"\n")


@dataclass(frozen=True)
class ScannedCode:
    """A valid item identifier and when it was read (``time.time()``)."""

    code: str
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class ScanRejected:
    """A scan that was not passed on: the raw line, the reason, and a readable detail."""

    raw: bytes
    reason: RejectReason
    detail: str
    at: float = field(default_factory=time.time)


def _log_rejection(event: ScanRejected) -> None:
    log.warning("barcode scan rejected (%s): %s", event.reason.value, event.detail)


class SerialScanner:
    """Reads codes from the scanner at ``port``; use as a context manager or call :meth:`open`."""

    def __init__(self, port: str, *, rules: CodeRules = CodeRules(), baudrate: int = 9600,
                 on_rejected: Callable[[ScanRejected], None] = _log_rejection,
                 max_line_bytes: int = 256) -> None:
        self.link = SerialLink(port, baudrate=baudrate)
        self.rules = rules
        self.on_rejected = on_rejected
        self.max_line_bytes = max_line_bytes
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def port(self) -> str:
        return self.link.port

    def open(self) -> SerialScanner:
        self.link.open()
        return self

    def close(self) -> None:
        self.stop()
        self.link.close()

    def __enter__(self) -> SerialScanner:
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def read_code(self, timeout_s: float) -> ScannedCode | None:
        """The next valid code, or None if none arrived within ``timeout_s``.

        Bad scans met on the way go to ``on_rejected``. Raises
        :class:`DeviceDisconnected` if the scanner's port vanished.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                raw = self.link.read_until(LINE_ENDINGS, remaining)
            except DeviceTimeout:
                self._reject_overlong_partial()
                return None
            line = raw.rstrip(b"\r\n")
            if not line:
                continue  # the LF of a CR LF pair, or an empty line
            code = self._validate(line)
            if code is not None:
                return ScannedCode(code)

    # -- background reading ----------------------------------------------------------

    def start(self, on_code: Callable[[ScannedCode], None]) -> None:
        """Read in a daemon thread and call ``on_code`` for each valid code until :meth:`stop`."""
        if self._thread is not None:
            raise RuntimeError("scanner is already reading in the background")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(on_code,),
                                        name=f"scanner-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout=2.0)

    def _run(self, on_code: Callable[[ScannedCode], None]) -> None:
        while not self._stop.is_set():
            try:
                scanned = self.read_code(timeout_s=0.2)
            except DeviceDisconnected as error:
                log.warning("barcode scanner on %s lost (%s); reopening", self.port, error)
                try:  # short tries, so stop() is never kept waiting
                    self.link.reopen(timeout_s=0.5)
                except DriverError:
                    pass
                continue
            if scanned is not None:
                on_code(scanned)

    # -- internals -------------------------------------------------------------------

    def _validate(self, line: bytes) -> str | None:
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            self._report(line, RejectReason.NOT_TEXT, f"non-ASCII bytes {line!r}")
            return None
        try:
            return validate_code(text.strip(), self.rules)
        except InvalidCode as invalid:
            self._report(line, invalid.reason, invalid.detail)
            return None

    def _reject_overlong_partial(self) -> None:
        """A line with no end that keeps growing is noise; drop it rather than buffer forever."""
        pending = self.link.peek_input()
        if len(pending) > self.max_line_bytes:
            self.link.discard_input()
            self._report(pending, RejectReason.TOO_LONG,
                         f"{len(pending)} bytes without a line end")

    def _report(self, raw: bytes, reason: RejectReason, detail: str) -> None:
        self.on_rejected(ScanRejected(raw, reason, detail))
