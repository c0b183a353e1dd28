"""Live frames for the calibration wizard, grabbed on a thread of their own.

The wizard's live view (the focus bar, the tray corners) needs a steady stream of frames,
and a 12 MP grab takes 50 to 120 ms: grabbing in the UI thread would freeze the screen
while the technician turns the focus ring. A :class:`FrameSource` owns the camera and
the lights on one background thread: lights on when it starts, a frame every
``interval_s``, lights off and the camera closed when it stops. Every camera call
(settings, a new image source, saving the ``.pfs``) runs on that thread too, in the
order asked, so the driver is only ever used from one place.

Frames reach the UI thread through a queued signal, one at a time: the next frame is
grabbed only once the UI has taken the last, so a slow screen drops frames instead of
piling them up. Each :class:`LiveFrame` carries the settings it was taken with and a
``generation`` that grows with every settings or source change, so a measurement can
wait for a frame taken *after* a change (the exposure step's "apply and measure again").
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
from PyQt6.QtCore import QObject, Qt, pyqtSignal

from drivers.camera import Camera, CameraSettings, Frame
from drivers.errors import DriverError
from station_app.errors import StationError

log = logging.getLogger("ui.calibration.frame_source")

PREVIEW_WIDTH = 1280
"""Width of the copy shown on screen: a 4096-wide frame is scaled down once on the grab
thread, not on every repaint; measurements always use the full frame."""

Reopen = Callable[[Path], Camera]


@dataclass(frozen=True)
class LiveFrame:
    """One frame from the live view: the full frame to measure, a smaller copy to show,
    the settings it was taken with, the image source it came from (emulated or replay
    camera), its ``generation`` (settings/source changes before it) and ``sequence``
    (frames delivered before it, plus one)."""

    frame: Frame
    preview: np.ndarray
    settings: CameraSettings
    source: Path | None
    generation: int
    sequence: int

    @property
    def rgb(self) -> np.ndarray:
        return self.frame.rgb

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the full frame, the coordinates overlays are given in."""
        return self.frame.width, self.frame.height


def preview_of(rgb: np.ndarray, width: int = PREVIEW_WIDTH) -> np.ndarray:
    """``rgb`` scaled down to ``width`` (area averaging); small frames are shown as they are."""
    if rgb.shape[1] <= width:
        return rgb
    height = max(1, round(rgb.shape[0] * width / rgb.shape[1]))
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


class FrameSource(QObject):
    """Grabs frames from ``camera`` on a background thread while started (see module doc).

    ``lights`` is the lighting controller (``on()``/``off()``), switched on for the live
    view and off at the end. ``reopen(path)`` opens a camera serving another image
    source (emulated or replay cameras: a scene per step); None where the camera is
    real. The source owns ``camera`` from here on and closes it when stopped.
    """

    frame_ready = pyqtSignal(object)     # LiveFrame, in the UI thread
    problem = pyqtSignal(str)            # a camera or lighting fault; "" once frames flow again
    _arrived = pyqtSignal(object)
    _failed = pyqtSignal(str)

    def __init__(self, camera: Camera, lights: Any = None, *, reopen: Reopen | None = None,
                 source: Path | None = None, interval_s: float = 0.1,
                 grab_timeout_ms: int = 5000, preview_width: int = PREVIEW_WIDTH,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._camera = camera
        self._lights = lights
        self._reopen = reopen
        self._source = Path(source) if source is not None else None
        self._interval_s = interval_s
        self._grab_timeout_ms = grab_timeout_ms
        self._preview_width = preview_width
        self._settings = camera.settings()
        self._requests: queue.Queue[tuple[Callable[[], Any], Future, int | None]] = queue.Queue()
        self._stop = threading.Event()
        self._consumed = threading.Event()
        self._consumed.set()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._generation = 0
        self._requested_generation = 0
        self._sequence = itertools.count(1)
        self._had_problem = False
        self._lights_on = False
        self.latest: LiveFrame | None = None
        # Queued: the slots run in this object's (the UI) thread, whoever emits.
        self._arrived.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._failed.connect(self._report, Qt.ConnectionType.QueuedConnection)

    # -- state ---------------------------------------------------------------------------

    @property
    def settings(self) -> CameraSettings:
        """The settings the camera runs with (as read back after the last change)."""
        return self._settings

    @property
    def source(self) -> Path | None:
        return self._source

    @property
    def camera(self) -> Camera:
        return self._camera

    @property
    def can_change_source(self) -> bool:
        return self._reopen is not None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def lights_on(self) -> bool:
        return self._lights_on

    @property
    def generation(self) -> int:
        """The generation the next change will have reached once done (see module doc)."""
        return self._requested_generation

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="calibration-frames",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop grabbing, lights off, camera closed; waits for the thread (a grab in
        flight finishes first)."""
        self._closed = True
        self._stop.set()
        self._consumed.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s if timeout_s is not None
                        else self._grab_timeout_ms / 1000 + 5)
            if thread.is_alive():
                log.warning("the frame thread did not stop in time")
        else:
            self._shut_down()

    # -- requests, run on the grab thread in order -----------------------------------------

    def call(self, function: Callable[[Camera], Any]) -> Future:
        """Run ``function(camera)`` on the grab thread; its result or error in the future."""
        return self._ask(lambda: function(self._camera), changes=False)

    def apply(self, settings: CameraSettings) -> int:
        """Apply camera settings; frames of the returned generation are taken with them."""
        def change() -> CameraSettings:
            self._settings = self._camera.apply(settings)
            return self._settings
        return self._ask_change(change, "camera settings")

    def set_image_source(self, source: Path) -> int:
        """Serve another image source (emulated or replay camera: the scene a technician
        would put in the tray); the camera keeps its settings. Returns the generation of
        the first frame from it."""
        if self._reopen is None:
            raise StationError("this camera is a real one: its picture changes only with "
                               "what lies in the tray")
        source = Path(source)

        def change() -> Path:
            if self._source is not None and source.resolve() == self._source.resolve():
                return source
            old_source = self._source
            self._camera.close()
            try:
                camera = self._reopen(source)
            except (StationError, DriverError, OSError):
                if old_source is not None:   # back to what worked, then report
                    self._camera = self._reopen(old_source)
                    self._settings = self._camera.apply(self._settings)
                raise
            self._camera = camera
            self._settings = camera.apply(self._settings)
            self._source = source
            return source
        return self._ask_change(change, f"image source {source}")

    def save_settings(self, path: Path) -> Future:
        """Write the camera's feature file (``.pfs``) on the grab thread."""
        return self.call(lambda camera: camera.save_settings(path))

    def _ask_change(self, change: Callable[[], Any], what: str) -> int:
        self._requested_generation += 1
        generation = self._requested_generation
        future = self._ask(change, changes=True, generation=generation)

        def report(done: Future) -> None:
            error = done.exception()
            if error is not None:
                self._failed.emit(f"{what}: {error}")
        future.add_done_callback(report)
        return generation

    def _ask(self, function: Callable[[], Any], *, changes: bool,
             generation: int | None = None) -> Future:
        future: Future = Future()
        if self._closed:
            future.set_exception(StationError("the live view has stopped"))
            return future
        self._requests.put((function, future, generation if changes else None))
        if not self.running:    # not started (tests, or before show): run it here
            self._run_requests()
        return future

    def _run_requests(self) -> None:
        while True:
            try:
                function, future, generation = self._requests.get_nowait()
            except queue.Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = function()
            except Exception as error:  # handed to the caller through the future
                future.set_exception(error)
            else:
                future.set_result(result)
            if generation is not None:
                self._generation = generation

    # -- the grab thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._switch_lights(True)
            while not self._stop.is_set():
                self._run_requests()
                if not self._consumed.wait(0.05):
                    continue            # the UI has not shown the last frame yet
                if self._stop.is_set():
                    break
                started = time.monotonic()
                try:
                    frame = self._camera.grab(self._grab_timeout_ms)
                except (DriverError, OSError) as error:
                    self._failed.emit(f"camera: {error}")
                    self._had_problem = True
                    self._stop.wait(1.0)
                    continue
                live = LiveFrame(frame, preview_of(frame.rgb, self._preview_width),
                                 self._settings, self._source, self._generation,
                                 next(self._sequence))
                if self._had_problem:
                    self._had_problem = False
                    self._failed.emit("")
                self._consumed.clear()
                self._arrived.emit(live)
                self._stop.wait(max(0.0, self._interval_s - (time.monotonic() - started)))
            self._run_requests()
        finally:
            self._shut_down()

    def _switch_lights(self, on: bool) -> None:
        if self._lights is None:
            return
        try:
            self._lights.on() if on else self._lights.off()
            self._lights_on = on
        except (DriverError, OSError) as error:
            self._failed.emit(f"lights: {error}")

    def _shut_down(self) -> None:
        while True:   # nobody will run what is still queued
            try:
                _, future, _ = self._requests.get_nowait()
            except queue.Empty:
                break
            if future.set_running_or_notify_cancel():
                future.set_exception(StationError("the live view has stopped"))
        self._switch_lights(False)
        try:
            self._camera.close()
        except (DriverError, OSError) as error:
            log.warning("closing the camera: %s", error)

    # -- the UI thread -------------------------------------------------------------------

    def _deliver(self, live: LiveFrame) -> None:
        try:
            if not self._closed:
                self.latest = live
                self.frame_ready.emit(live)
        finally:
            self._consumed.set()

    def _report(self, message: str) -> None:
        if message:
            log.warning("%s", message)
        if not self._closed:
            self.problem.emit(message)
