"""Drive the real operator window from a script, the way an associate would: keys.

Used by ``scripts/screenshots.py`` and ``scripts/ui_latency.py``. A script is a generator
run inside the window's event loop: it yields a condition (a callable, waited for while
the loop keeps running) or a number of milliseconds to let pass; when it ends, the
application quits. Nothing here blocks the UI thread.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import traceback
from typing import Any, Callable, Generator

Step = Generator[Any, None, None]


def ensure_display(argv: list[str], size: str = "1920x1080") -> None:
    """Re-run this script under ``xvfb-run`` when there is no screen (and it is there)."""
    from station_app.commands import screens_set

    if screens_set(os.environ) or os.environ.get("OPERATOR_DRIVER_XVFB"):
        return
    if shutil.which("xvfb-run") is None:
        sys.exit("no screen and no xvfb-run: apt-get install -y xvfb libxcb-icccm4 "
                 "libxcb-keysyms1 libxcb-cursor0, or set QT_QPA_PLATFORM=offscreen")
    environment = dict(os.environ, OPERATOR_DRIVER_XVFB="1")
    command = ["xvfb-run", "-a", "-s", f"-screen 0 {size}x24", sys.executable, *argv]
    sys.exit(subprocess.call(command, env=environment))


class ScriptRunner:
    """Runs ``script`` in the Qt event loop; ``failed`` holds the error, if any."""

    def __init__(self, script: Step, timeout_s: float = 120.0) -> None:
        from PyQt6.QtCore import QTimer
        self._script = script
        self._timeout_s = timeout_s
        self._condition: Callable[[], bool] | None = None
        self._deadline = 0.0
        self.failed: str | None = None
        self._timer = QTimer()
        self._timer.setInterval(5)
        self._timer.timeout.connect(self._poll)

    def start(self) -> None:
        self._timer.start()
        self._advance()

    def _finish(self, error: str | None = None) -> None:
        from PyQt6.QtWidgets import QApplication
        self._timer.stop()
        self.failed = error
        QApplication.instance().quit()

    def _advance(self) -> None:
        try:
            step = next(self._script)
        except StopIteration:
            self._finish()
            return
        except Exception:
            self._finish(traceback.format_exc())
            return
        if callable(step):
            self._condition = step
        else:
            until = time.monotonic() + float(step) / 1000.0
            self._condition = lambda: time.monotonic() >= until
        self._deadline = time.monotonic() + self._timeout_s

    def _poll(self) -> None:
        if self._condition is None:
            return
        try:
            done = self._condition()
        except Exception:
            self._finish(traceback.format_exc())
            return
        if done:
            self._condition = None
            self._advance()
        elif time.monotonic() > self._deadline:
            self._finish(f"timed out after {self._timeout_s:.0f} s waiting in the script")


def key(window: Any, name: str) -> None:
    """Press and release one key on the window (shortcuts fire as for a real key)."""
    from PyQt6.QtCore import Qt
    from PyQt6.QtTest import QTest
    QTest.keyClick(window, getattr(Qt.Key, f"Key_{name}"))


def type_text(widget: Any, text: str) -> None:
    from PyQt6.QtTest import QTest
    QTest.keyClicks(widget, text)


def run_scripted_window(config: Any, frames: Any, run_dir: Any,
                        script: Callable[[Any, Any], Step],
                        on_ready: Callable[[Any, Any], None] | None = None) -> int:
    """Open the demo operator window and run ``script(window, station)`` in it; the exit
    code is 1 (with the error printed) when the script failed, else the window's."""
    from ui.app import run_operator_window

    runner: list[ScriptRunner] = []

    def start(window: Any, station: Any) -> None:
        if on_ready is not None:
            on_ready(window, station)
        runner.append(ScriptRunner(script(window, station)))
        runner[0].start()

    code = run_operator_window(config, frames, run_dir, demo=True, on_ready=start)
    if runner and runner[0].failed:
        print(runner[0].failed, file=sys.stderr)
        return 1
    return code
