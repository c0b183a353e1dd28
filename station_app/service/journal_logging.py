"""Log lines for the journal: a syslog priority on every line, and the station and capture
each line is about.

Under systemd, stderr is a stream to journald (``JOURNAL_STREAM`` names it). journald
reads a ``<N>`` prefix on each line as the syslog priority (3 error, 4 warning, 6 info,
7 debug), so ``journalctl -p warning`` works, and it stamps the time itself. Every
physical line, traceback lines included, is prefixed and carries
``station=<id> capture=<id or ->`` so that ``journalctl -u inspection-station
--grep capture=...`` finds everything about one capture.

The capture id comes from, in order: :func:`capture_context` (a context variable; code
that handles one capture wraps its work in it), else the station-wide capture in
progress set with :func:`set_active_capture` (the core sets it from the workflow's
events: the workflow works on one capture at a time, on threads the core does not
own), else ``-``.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
import threading
from typing import IO, Iterator, Mapping

_CAPTURE: contextvars.ContextVar[str | None] = contextvars.ContextVar("station_capture",
                                                                      default=None)
_active_lock = threading.Lock()
_active_capture: str | None = None

NO_CAPTURE = "-"

# syslog priorities (RFC 5424) for Python's levels
_PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4),
               (logging.INFO, 6))


def syslog_priority(levelno: int) -> int:
    for threshold, priority in _PRIORITIES:
        if levelno >= threshold:
            return priority
    return 7


@contextlib.contextmanager
def capture_context(capture_id: str | None) -> Iterator[None]:
    """Lines logged inside (on this thread or task) carry ``capture=<capture_id>``."""
    token = _CAPTURE.set(capture_id)
    try:
        yield
    finally:
        _CAPTURE.reset(token)


def set_active_capture(capture_id: str | None) -> None:
    """The capture the station is working on now (None between captures); used by lines
    outside any :func:`capture_context`."""
    global _active_capture
    with _active_lock:
        _active_capture = capture_id


def current_capture() -> str:
    return _CAPTURE.get() or _active_capture or NO_CAPTURE


class StationContextFilter(logging.Filter):
    """Adds ``record.station``, ``record.capture`` and ``record.priority`` to every record."""

    def __init__(self, station_id: str) -> None:
        super().__init__()
        self.station_id = station_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.station = self.station_id
        record.capture = current_capture()
        record.priority = syslog_priority(record.levelno)
        return True


class StationFormatter(logging.Formatter):
    """``[<N>]station=... capture=... logger: message``, repeated on every line of a
    multi-line message or traceback (journald makes each line its own entry)."""

    def __init__(self, journal: bool) -> None:
        super().__init__("%(name)s: %(message)s")
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        station = getattr(record, "station", "?")
        capture = getattr(record, "capture", NO_CAPTURE)
        if self.journal:
            prefix = f"<{syslog_priority(record.levelno)}>station={station} capture={capture} "
        else:
            prefix = (f"{self.formatTime(record)} {record.levelname} station={station} "
                      f"capture={capture} ")
        return "\n".join(prefix + line for line in text.splitlines() or [""])


def stderr_is_journal(environ: Mapping[str, str] | None = None, stream: IO | None = None) -> bool:
    """True when ``stream`` (stderr) is the journal stream systemd named in JOURNAL_STREAM
    (``<device>:<inode>``), as sd_journal_stream_fd's users are told to check."""
    env = os.environ if environ is None else environ
    value = env.get("JOURNAL_STREAM", "")
    if not value:
        return False
    stream = stream if stream is not None else sys.stderr
    try:
        device, inode = (int(part) for part in value.split(":"))
        info = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        # No file descriptor to compare (a test's StringIO): trust the variable.
        return True
    return (info.st_dev, info.st_ino) == (device, inode)


def setup_logging(station_id: str, level: int = logging.INFO, *, stream: IO | None = None,
                  environ: Mapping[str, str] | None = None) -> logging.Handler:
    """Replace the root logger's handlers with one writing station lines to ``stream``
    (stderr); journald priority prefixes when stderr is the journal. Returns the handler."""
    stream = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(stream)
    handler.addFilter(StationContextFilter(station_id))
    handler.setFormatter(StationFormatter(journal=stderr_is_journal(environ, stream)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
