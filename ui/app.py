"""Starting the operator window: the Qt application, the station, the window, shutdown.

:func:`run_operator_window` opens the station in this process (``open_station``, as the
headless demo does) and shows the window over its workflow; :func:`run_remote_window`
shows the same window over the station core's socket. The station is closed when the
window closes, whatever happened.
"""

from __future__ import annotations

import itertools
import logging
import sys
from pathlib import Path
from typing import Any, Callable

from PyQt6.QtWidgets import QApplication, QMessageBox

from station_app.config import StationConfig
from ui.operator_window import OperatorWindow, StationInfo
from ui.status_bar import OK

log = logging.getLogger("ui.app")

OnReady = Callable[[OperatorWindow, Any], None]


def application() -> QApplication:
    """The process's QApplication (created once)."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setApplicationName("damage-station")
        app.setApplicationDisplayName("Damage inspection station")
    assert isinstance(app, QApplication)
    return app


def show_error(title: str, message: str) -> None:
    """Printed (logs, a terminal) and in a message box (the person at the screen)."""
    print(f"{title}: {message}", file=sys.stderr)
    app = application()
    box = QMessageBox(QMessageBox.Icon.Critical, title, message)
    # The application's own loop, not a dialog's nested one, which returns at once
    # when the application loop ran and quit before.
    quit_on_last = app.quitOnLastWindowClosed()
    app.setQuitOnLastWindowClosed(False)
    box.finished.connect(app.quit)
    box.show()
    app.exec()
    app.setQuitOnLastWindowClosed(quit_on_last)


def demo_scanner(station: Any) -> Callable[[], str]:
    """A simulated scan of the next demo item code, through the scanner simulator when
    the scanner is simulated (so the code takes the scanner's path), else typed."""
    from station_app.demo import demo_item_codes
    from station_app.workflow import ItemTyped

    codes = itertools.cycle(demo_item_codes(100))

    def scan() -> str:
        code = next(codes)
        simulator = station.scanner_simulator
        if simulator is not None:
            simulator.scan(code)
        else:
            station.workflow.submit(ItemTyped(code))
        return code
    return scan


def station_info(station: Any) -> StationInfo:
    config = station.config
    return StationInfo(station_id=config.station.id, station_name=config.station.name,
                       runtime=station.runtime, model_versions=dict(station.model_versions),
                       profile_version=station.profile_version)


def open_window(station: Any, config: StationConfig, demo: bool = True) -> OperatorWindow:
    """The window over an opened station's workflow (devices were opened: shown green)."""
    window = OperatorWindow(station.workflow, config.ui, station_info(station),
                            scan_demo_item=demo_scanner(station) if demo else None)
    window.status_bar.set_part("camera", OK, "opened")
    window.status_bar.set_part("lights", OK, "answering")
    window.status_bar.set_part("models", OK, "loaded")
    return window


def run_operator_window(config: StationConfig, frames: Path | None = None,
                        out: Path | None = None, demo: bool = True,
                        on_ready: OnReady | None = None) -> int:
    """Open the station, show the window, run until it closes; the exit code.

    ``frames`` feed the emulated or replay camera; ``out`` puts the capture store in
    ``out/captures``. ``on_ready(window, station)`` runs once the window is shown
    (scripts drive the window from it)."""
    from station_app.station import open_station

    app = application()
    store_root = out / "captures" if out is not None else None
    print(f"opening the station ({config.station.id}): models, camera, lights, scanner...",
          file=sys.stderr)
    try:
        station = open_station(config, frames, store_root)
    except Exception as error:   # any part failing to open: the person must see why
        show_error("The station could not start", str(error) or type(error).__name__)
        return 1
    try:
        window = open_window(station, config, demo)
        window.apply_fullscreen()
        if on_ready is not None:
            on_ready(window, station)
        return _run(app, window)
    finally:
        station.close()


def run_remote_window(config: StationConfig, client: Any, on_ready: OnReady | None = None
                      ) -> int:
    """The window over a ``WorkflowClient`` connected to the station core."""
    app = application()
    info = StationInfo(station_id=config.station.id, station_name=config.station.name,
                       runtime="station core")
    window = OperatorWindow(client, config.ui, info, tick_interval_ms=0)
    window.apply_fullscreen()
    if on_ready is not None:
        on_ready(window, client)
    return _run(app, window)


def _run(app: QApplication, window: OperatorWindow) -> int:
    """The event loop until the window closes or the application quits; the window is
    closed either way. The window's own ``closed`` signal ends the loop (not Qt's "last
    window closed", which would also post a quit when the window is closed afterwards)."""
    quit_on_last = app.quitOnLastWindowClosed()
    app.setQuitOnLastWindowClosed(False)
    window.closed.connect(app.quit)
    try:
        code = app.exec()
    finally:
        window.closed.disconnect(app.quit)
        window.close()
        app.setQuitOnLastWindowClosed(quit_on_last)
    return int(code)
