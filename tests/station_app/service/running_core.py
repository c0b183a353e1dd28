"""The real station core for tests: its configuration and a thread that runs it."""

from __future__ import annotations

import threading
from pathlib import Path

from station_app.config import load_config
from station_app.service.core import StationCore
from station_app.service.notify import SystemdNotifier
from tests.station_app.service.notify_socket import NotifyListener


def emulator_frames(folder: Path) -> Path:
    """One synthetic 12 MP tray frame for the emulated camera."""
    from station_app.commands.emulator_frames import ensure_emulator_frames
    return ensure_emulator_frames(folder, count=1)


def write_config(folder: Path, frames: Path, extra: str = "") -> Path:
    path = folder / "station.yaml"
    path.write_text(f"""
station:
  id: line-3
data:
  root: {folder / 'data'}
  min_free_gb: 0.1
camera:
  image_source: {frames}
lighting:
  timeout_s: 0.2
service:
  socket_path: {folder / 'core.sock'}
  tick_s: 0.1
  health_grace_s: 1.0
{extra}""")
    return path


class RunningCore:
    """StationCore.run() on a thread, as `station-app serve` runs it on the main thread."""

    def __init__(self, config_path: Path, listener: NotifyListener) -> None:
        self.config = load_config(config_path)
        self.notifier = SystemdNotifier.from_environment(listener.environment())
        self.core = StationCore(self.config, notifier=self.notifier)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="core-under-test")

    def _run(self) -> None:
        try:
            self.core.run()
        except BaseException as error:   # reported to the test
            self.error = error

    def __enter__(self) -> RunningCore:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.core.request_stop("test over")
        self.thread.join(timeout=30)
        self.notifier.close()
