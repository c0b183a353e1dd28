"""A terminal progress bar with a time-left estimate, fed by progress callbacks.

Library code reports progress as ``callback(done, total)``; only the command line
decides how to show it, so the same generator or trainer runs silently in tests.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class ProgressBar:
    """Callable ``(done, total)`` that redraws one line on a terminal, or logs sparsely otherwise."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30,
                 min_interval_s: float = 0.2) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.min_interval_s = min_interval_s
        self._start = time.monotonic()
        self._first: tuple[float, int] | None = None  # rate is measured from the first report
        self._last_draw = 0.0
        self._interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_logged_tenth = -1
        self._phase: tuple[int, int] | None = None   # (total, done) of the last report

    def __call__(self, done: int, total: int, note: str = "") -> None:
        now = time.monotonic()
        if self._phase is None or total != self._phase[0] or done < self._phase[1]:
            # The clock starts at the first report (work reports its start as done 0), not
            # when the bar was made, which may be long before; and again when the bar is
            # reused for the next part of the work (another split, say), or the estimate
            # mixes both parts.
            self._start, self._first, self._last_logged_tenth = now, None, -1
        self._phase = (total, done)
        if self._first is None:
            self._first = (now, done)
        finished = total > 0 and done >= total
        if not finished and now - self._last_draw < self.min_interval_s:
            return
        self._last_draw = now
        elapsed = now - self._start
        fraction = done / total if total else 0.0
        first_time, first_done = self._first
        measured = done > first_done
        eta = (now - first_time) / (done - first_done) * (total - done) if measured else 0.0
        eta_text = _format_seconds(eta) if measured else "--:--"
        filled = int(self.width * fraction)
        bar = "#" * filled + "-" * (self.width - filled)
        line = (f"{self.label} [{bar}] {done}/{total} {fraction:4.0%} "
                f"elapsed {_format_seconds(elapsed)} left {eta_text}")
        if note:
            line += f" {note}"
        if self._interactive:
            self.stream.write("\r" + line + ("\n" if finished else ""))
        else:
            tenth = int(fraction * 10)
            if tenth == self._last_logged_tenth and not finished:
                return
            self._last_logged_tenth = tenth
            self.stream.write(line + "\n")
        self.stream.flush()
