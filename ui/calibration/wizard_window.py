"""The calibration wizard window: one step per page, measured on live camera frames.

The window shows ``calibration.wizard.CalibrationWizard`` and never decides anything
itself: each page measures through its step, shows the result against the step's pass
criterion, and offers Redo, Accept-with-reason (a failed result) and Skip-with-reason;
Next is allowed only where the wizard allows it. Frames come from a
:class:`~ui.calibration.frame_source.FrameSource` (its own thread, lights on while the
wizard is open); measurements run on one worker thread, so a 12 MP flat-field fit never
freezes the screen, and they are serialised: while one runs, button presses wait for it
(the wizard is only ever touched by one measurement or one button at a time).

Steps, as the technician sees them:

1. focus: every live frame is measured; the bar shows the sharpness against the best seen
   since the step started. Hold the reading once the ring is locked; Redo starts over.
2. exposure: Measure reads the grey card; a failure proposes exposure and white balance,
   which "Apply proposal and measure" sets on the camera before measuring a new frame.
3. uniformity: Measure fits the lighting of the empty tray; the map shows the fall-off.
4. tray: the corners are detected when the page opens; drag any handle and the result is
   measured again with the dragged corners; "Use detected corners" goes back.
5. thresholds: pick the method (in words) and the validation run folder; Measure fits the
   thresholds and shows the expected recall and the share of good items sidelined.
6. summary: every step's outcome; Save writes a new profile version with the camera's
   ``.pfs`` and shows its version.

:class:`CalibrationSession` puts the PIN dialog in front of all of this, and
:func:`run_calibration` is what ``station-app calibrate`` runs.
"""

from __future__ import annotations

import dataclasses
import getpass
import logging
import sys
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from PyQt6.QtCore import QObject, Qt, pyqtSignal
from PyQt6.QtGui import QCloseEvent
from PyQt6.QtWidgets import (QComboBox, QFileDialog, QFrame, QHBoxLayout, QLabel, QLineEdit,
                             QMainWindow, QProgressBar, QSizePolicy,
                             QStackedWidget, QVBoxLayout, QWidget)

from calibration.pin import PinStore
from calibration.profile import (REPAIR_HINT, CameraProfile, LightingProfile, ProfileError,
                                 ProfileStore, ProfileVersion, StationProfile)
from calibration.threshold_step import DEFAULT_METHOD, METHOD_CHOICES
from calibration.tray_calibration import TrayNotFound
from calibration.wizard import (CalibrationStep, CalibrationWizard, GreyCardInput, StepNotDone,
                                StepResult, StepState, ThresholdInput, TrayInput,
                                central_region, open_wizard)
from station_app.config import StationConfig
from station_app.errors import StationError
from station_app.station import lighting_settings
from ui.calibration.frame_source import FrameSource, LiveFrame
from ui.calibration.pin_dialog import PinDialog
from ui.calibration.step_page import (BADGES, ScoreHistogram, StepPage, SummaryPage, button,
                                      headline, set_property, wizard_style)

log = logging.getLogger("ui.calibration.wizard_window")

SCENE_STEPS = ("focus", "exposure", "uniformity", "tray")
"""Steps that look at the tray; an emulated or replay camera's image source may hold a
sub-folder of that name per step (the scene a technician would put in the tray)."""
CHIP_NAMES = {"focus": "Focus", "exposure": "Exposure", "uniformity": "Lighting",
              "tray": "Tray", "thresholds": "Thresholds"}


def step_scenes(image_source: Path | None) -> dict[str, Path]:
    """``{step id: folder}`` for the per-step sub-folders of ``image_source``."""
    if image_source is None or not Path(image_source).is_dir():
        return {}
    return {step: Path(image_source) / step for step in SCENE_STEPS
            if (Path(image_source) / step).is_dir()}


@dataclass
class _Pending:
    """Work waiting for the next frame of the right scene and settings."""

    step_id: str
    generation: int
    after_sequence: int
    work: Callable[[LiveFrame], Any]
    done: Callable[[Future], None]


class CalibrationWindow(QMainWindow):
    """The wizard's window over ``wizard`` and the live ``frames`` (see module doc).

    ``scenes`` maps step ids to image folders (emulated or replay cameras); ``run_dir``
    pre-fills the threshold step's validation run. ``saved`` fires with the new
    ``ProfileVersion``; ``closed`` when the window has closed and the camera and lights
    are released.
    """

    saved = pyqtSignal(object)
    closed = pyqtSignal()
    _job_done = pyqtSignal(object, object)

    def __init__(self, wizard: CalibrationWizard, frames: FrameSource, *,
                 scenes: dict[str, Path] | None = None, run_dir: Path | None = None,
                 station_name: str = "", font_scale: float = 1.0,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.wizard = wizard
        self.frames = frames
        self.scenes = dict(scenes or {})
        self.saved_version: ProfileVersion | None = None
        self._executor = ThreadPoolExecutor(max_workers=1,
                                            thread_name_prefix="calibration-measure")
        self._busy = False
        self._idle_tasks: list[Callable[[], None]] = []
        self._pending: _Pending | None = None
        self._focus_live = False
        self._scene_generation = 0
        self._last_sequence = 0
        self._tray_corners: tuple[tuple[float, float], ...] | None = None
        self._tray_adjusted = False
        self._closing = False
        self._job_done.connect(self._finish_job, Qt.ConnectionType.QueuedConnection)

        self.setWindowTitle("Station calibration")
        self.setStyleSheet(wizard_style(font_scale))
        central = QWidget()
        central.setObjectName("central")
        self.setCentralWidget(central)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self._build_header(station_name))

        self.pages = QStackedWidget()
        self.step_pages: dict[str, StepPage] = {}
        count = len(wizard.steps)
        for number, step in enumerate(wizard.steps, start=1):
            left = self._build_threshold_panel(run_dir) if step.id == "thresholds" else None
            page = StepPage(step, number, count, left)
            self._connect_page(page)
            self.step_pages[step.id] = page
            self.pages.addWidget(page)
        self._build_step_extras()
        self.summary_page = SummaryPage()
        self.summary_page.author.setText(_login_name())
        self.summary_page.save_button.clicked.connect(self.save)
        self.summary_page.close_button.clicked.connect(self.close)
        self.pages.addWidget(self.summary_page)
        layout.addWidget(self.pages, 1)
        layout.addWidget(self._build_footer())

        frames.frame_ready.connect(self._on_frame)
        frames.problem.connect(self._on_problem)
        self.resize(1360, 860)
        self._enter_current()

    # -- building ------------------------------------------------------------------------

    def _build_header(self, station_name: str) -> QWidget:
        header = QFrame()
        header.setObjectName("wizardHeader")
        row = QHBoxLayout(header)
        row.setContentsMargins(18, 10, 18, 10)
        title = QLabel("Station calibration")
        title.setObjectName("wizardTitle")
        base = self.wizard.base
        context = QLabel(" · ".join(part for part in (
            station_name or self.wizard.station_id,
            f"starting from profile {base.label}" if base else "first calibration") if part))
        context.setObjectName("wizardContext")
        row.addWidget(title)
        row.addSpacing(14)
        row.addWidget(context)
        row.addStretch(1)
        self.chips: dict[str, QLabel] = {}
        for number, step in enumerate(self.wizard.steps, start=1):
            chip = QLabel(f"{number} {CHIP_NAMES.get(step.id, step.title.split(' ')[0])}")
            chip.setObjectName("stepChip")
            chip.setToolTip(step.title)
            self.chips[step.id] = chip
            row.addWidget(chip)
        chip = QLabel(f"{len(self.wizard.steps) + 1} Save")
        chip.setObjectName("stepChip")
        self.chips["summary"] = chip
        row.addWidget(chip)
        return header

    def _build_footer(self) -> QWidget:
        footer = QFrame()
        footer.setObjectName("footer")
        row = QHBoxLayout(footer)
        row.setContentsMargins(18, 10, 18, 10)
        self.back_button = button("‹ Back", "navButton")
        self.back_button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.status = QLabel("")
        self.status.setObjectName("footerStatus")
        self.status.setWordWrap(True)
        self.next_button = button("Next ›", "navButton")
        self.next_button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.back_button.clicked.connect(self.back)
        self.next_button.clicked.connect(self.next)
        row.addWidget(self.back_button)
        row.addSpacing(12)
        row.addWidget(self.status, 1)
        row.addSpacing(12)
        row.addWidget(self.next_button)
        return footer

    def _build_threshold_panel(self, run_dir: Path | None) -> QWidget:
        panel = QFrame()
        panel.setObjectName("thresholdPanel")
        column = QVBoxLayout(panel)
        column.setContentsMargins(20, 18, 20, 18)
        column.setSpacing(10)
        caption = QLabel("HOW CAUTIOUS SHOULD THE STATION BE?")
        caption.setObjectName("fieldCaption")
        self.method_picker = QComboBox()
        for method, words in METHOD_CHOICES.items():
            self.method_picker.addItem(words[:1].upper() + words[1:], method)
        self.method_picker.setCurrentIndex(max(0, self.method_picker.findData(DEFAULT_METHOD)))
        self.method_picker.currentIndexChanged.connect(self._method_changed)
        run_caption = QLabel("VALIDATION RUN (a finished `station-app replay DATA --out RUN`)")
        run_caption.setObjectName("fieldCaption")
        self.run_field = QLineEdit(str(run_dir) if run_dir else "")
        self.run_field.setObjectName("runField")
        self.run_field.setPlaceholderText("Folder of the validation run")
        self.browse_button = button("Choose…")
        self.browse_button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.browse_button.clicked.connect(self.choose_run)
        run_row = QHBoxLayout()
        run_row.addWidget(self.run_field, 1)
        run_row.addWidget(self.browse_button)
        self.histogram = ScoreHistogram()
        column.addWidget(caption)
        column.addWidget(self.method_picker)
        column.addSpacing(6)
        column.addWidget(run_caption)
        column.addLayout(run_row)
        column.addSpacing(6)
        column.addWidget(self.histogram, 1)
        return panel

    def _build_step_extras(self) -> None:
        focus = self.step_pages.get("focus")
        if focus is not None:
            self.focus_bar = QProgressBar()
            self.focus_bar.setObjectName("focusBar")
            self.focus_bar.setRange(0, 100)
            self.focus_bar.setFormat("%v % of best")
            self.focus_bar.setValue(0)
            self.focus_best = QLabel("Best sharpness: –")
            self.focus_best.setObjectName("focusBest")
            focus.extras.addWidget(self.focus_bar)
            focus.extras.addWidget(self.focus_best)
        exposure = self.step_pages.get("exposure")
        if exposure is not None:
            self.camera_now = QLabel("")
            self.camera_now.setObjectName("cameraNow")
            self.camera_now.setWordWrap(True)
            self.apply_button = button("Apply proposal and measure again")
            self.apply_button.clicked.connect(self.apply_proposal)
            exposure.extras.addWidget(self.camera_now)
            exposure.extras.addWidget(self.apply_button)
        tray = self.step_pages.get("tray")
        if tray is not None:
            hint = QLabel("Drag a corner handle onto the tray's outer corner; it is measured "
                          "again when you let go.")
            hint.setObjectName("hint")
            hint.setWordWrap(True)
            self.reset_corners_button = button("Use detected corners")
            self.reset_corners_button.clicked.connect(self.reset_corners)
            tray.extras.addWidget(hint)
            tray.extras.addWidget(self.reset_corners_button)
            tray.view.corners_moved.connect(self._on_corners_moved)
        uniformity = self.step_pages.get("uniformity")
        if uniformity is not None:
            legend = QLabel("The colour map shows the light relative to the tray centre: "
                            "yellow = as bright as the centre, violet = darkest.")
            legend.setObjectName("hint")
            legend.setWordWrap(True)
            uniformity.extras.addWidget(legend)

    def _connect_page(self, page: StepPage) -> None:
        page.measure_button.clicked.connect(self.measure)
        page.redo_button.clicked.connect(self.redo)
        page.accept_button.clicked.connect(self.accept_result)
        page.skip_button.clicked.connect(self.skip_step)

    # -- state ---------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """A measurement is running (button presses wait for it)."""
        return self._busy

    @property
    def focus_live(self) -> bool:
        return self._focus_live

    @property
    def waiting_for_frame(self) -> bool:
        return self._pending is not None

    @property
    def idle(self) -> bool:
        """Nothing running, nothing waiting for a frame, no live measuring."""
        return not self._busy and self._pending is None and not self._idle_tasks \
            and not self._focus_live

    def page(self, step_id: str) -> StepPage:
        return self.step_pages[step_id]

    @property
    def current_page(self) -> QWidget:
        return self.pages.currentWidget()

    def _step(self) -> CalibrationStep | None:
        return self.wizard.step

    # -- serialising work -----------------------------------------------------------------

    def _when_idle(self, task: Callable[[], None]) -> None:
        """Run ``task`` now, or after the measurement in flight."""
        if self._busy:
            self._idle_tasks.append(task)
        else:
            task()
            self._refresh()

    def _start_job(self, work: Callable[[], Any], done: Callable[[Future], None]) -> None:
        self._busy = True
        future = self._executor.submit(work)
        future.add_done_callback(lambda finished: self._job_done.emit(done, finished))
        self._refresh()

    def _finish_job(self, done: Callable[[Future], None], future: Future) -> None:
        self._busy = False
        try:
            if not self._closing:
                done(future)
        except Exception:          # a bug in showing a result must not wedge the window
            log.exception("showing a measurement failed")
        while self._idle_tasks and not self._busy:
            self._idle_tasks.pop(0)()
        if not self._closing:
            self._refresh()

    def _wait_for_frame(self, step_id: str, work: Callable[[LiveFrame], Any],
                        done: Callable[[Future], None], generation: int | None = None) -> None:
        """Run ``work`` on the next frame of this step's scene (and settings)."""
        self._pending = _Pending(step_id, max(generation or 0, self._scene_generation),
                                 self._last_sequence, work, done)
        self._say_status("Waiting for a fresh frame…")
        self._refresh()

    # -- frames --------------------------------------------------------------------------

    def _on_frame(self, live: LiveFrame) -> None:
        self._last_sequence = live.sequence
        page = self.current_page
        if isinstance(page, StepPage) and page.step.id != "thresholds":
            page.view.set_frame(live.preview, live.size)
        if self._busy or live.generation < self._scene_generation:
            return
        step = self._step()
        pending = self._pending
        if pending is not None:
            if step is None or step.id != pending.step_id:
                self._pending = None
            elif live.generation >= pending.generation and live.sequence > pending.after_sequence:
                self._pending = None
                self._say_status("")
                self._start_job(lambda: pending.work(live), pending.done)
            return
        if self._focus_live and step is not None and step.id == "focus":
            self._start_job(lambda: step.measure(live.rgb), self._shown(step))

    def _on_problem(self, message: str) -> None:
        if message and self._pending is not None:
            page = self.step_pages.get(self._pending.step_id)
            self._pending = None
            if page is not None:
                page.say(f"Not measured: {message}")
        self._say_status(message, "error" if message else "")
        self._refresh()

    # -- results -------------------------------------------------------------------------

    def _shown(self, step: CalibrationStep) -> Callable[[Future], None]:
        """A job's end: show the step's result, or why there is none."""
        def done(future: Future) -> None:
            page = self.step_pages[step.id]
            error = future.exception()
            if error is not None:
                page.say(_explain(error))
                log.warning("measuring %s: %s", step.id, error, exc_info=error)
                return
            self._show_result(step, future.result())
        return done

    def _show_result(self, step: CalibrationStep, result: StepResult | None) -> None:
        page = self.step_pages[step.id]
        page.show_result(result if result is not None else step.result)
        page.view.set_overlay(result.overlay if result is not None else None)
        if step.id == "focus":
            self._show_focus(result)
        if result is not None and step.id == "tray" and result.measurement is not None:
            self._tray_corners = tuple(map(tuple, result.measurement.geometry.corners))

    def _show_focus(self, result: StepResult | None) -> None:
        values = result.values if result is not None else {}
        if not values:
            self.focus_bar.setValue(0)
            self.focus_best.setText("Best sharpness: –")
            set_property(self.focus_bar, "ok", "false")
            return
        self.focus_bar.setValue(round(min(100.0, values["relative_percent"])))
        set_property(self.focus_bar, "ok", "true" if result.passed else "false")
        self.focus_best.setText(f"Best sharpness: <b>{values['best']:.4g}</b> · now "
                                f"{values['sharpness']:.4g} · {values['readings']} readings")

    # -- actions -------------------------------------------------------------------------

    def measure(self) -> None:
        """The current step's main action (Measure; on the focus page Hold / Resume)."""
        step = self._step()
        if step is None:
            return
        page = self.step_pages[step.id]
        page.say("")
        if step.id == "focus":
            if self._focus_live:
                self._focus_live = False            # the reading in flight is the last
                self._say_status("Reading held.")
            else:
                self._focus_live = True
                self._say_status("")
            self._refresh()
            return
        if step.id == "thresholds":
            self._when_idle(self._measure_thresholds)
            return
        self._when_idle(lambda: self._measure_on_next_frame(step))

    def _measure_on_next_frame(self, step: CalibrationStep, generation: int | None = None
                               ) -> None:
        if step.id == "exposure":
            def inputs(live: LiveFrame) -> Any:
                return GreyCardInput(live.rgb, live.frame.exposure_us,
                                     live.settings.white_balance, live.frame.gain_db)
        elif step.id == "tray":
            corners = self._tray_corners if self._tray_adjusted else None

            def inputs(live: LiveFrame) -> Any:
                return TrayInput(live.rgb, corners)
        else:
            def inputs(live: LiveFrame) -> Any:
                return live.rgb
        self._wait_for_frame(step.id, lambda live: step.measure(inputs(live)),
                             self._shown(step), generation)

    def _measure_thresholds(self) -> None:
        step = self.wizard.get("thresholds")
        page = self.step_pages["thresholds"]
        text = self.run_field.text().strip()
        if not text:
            page.say("Choose the validation run folder first (the --out folder of a "
                     "finished `station-app replay` over validation data).")
            return
        run_dir = Path(text).expanduser()
        method = self.method_picker.currentData()

        def work() -> tuple[Any, StepResult]:
            from station_app.replay.threshold_fit import validation_scores_from_run

            validation = validation_scores_from_run(run_dir)
            return validation, step.measure(ThresholdInput(validation, method))

        def done(future: Future) -> None:
            error = future.exception()
            if error is not None:
                page.say(_explain(error))
                return
            validation, result = future.result()
            page.say("")
            thresholds = ((result.values["ok_below"], result.values["damaged_above"])
                          if "ok_below" in result.values else None)
            self.histogram.set_scores(validation.labels, validation.scores, thresholds)
            self._show_result(step, result)
        page.say("Reading the validation run…", "info")
        self._start_job(work, done)

    def apply_proposal(self) -> None:
        """Exposure step: set the proposed exposure and white balance, measure again."""
        def apply() -> None:
            step = self.wizard.get("exposure")
            page = self.step_pages["exposure"]
            card = step.result.measurement if step.result is not None else None
            if card is None:
                page.say("Measure the grey card first: the proposal comes from it.")
                return
            settings = self.frames.settings
            exposure = card.suggested_exposure_us or settings.exposure_us
            try:
                wanted = settings.replace(exposure_us=float(exposure),
                                          white_balance=tuple(card.white_balance))
            except ValueError as error:
                page.say(f"The proposal cannot be set: {error}")
                return
            page.say(f"Applying exposure {exposure:.0f} µs and white balance "
                     f"{' / '.join(f'{g:.3f}' for g in card.white_balance)}…", "info")
            generation = self.frames.apply(wanted)
            self._measure_on_next_frame(step, generation)
        self._when_idle(apply)

    def redo(self) -> None:
        step = self._step()
        if step is None:
            return
        if step.id == "focus":
            self._focus_live = False

        def redo() -> None:
            step.redo()
            page = self.step_pages[step.id]
            page.say("")
            self._show_result(step, None)
            if step.id == "focus":
                self._focus_live = True
            elif step.id == "tray":
                self._tray_adjusted = False
                self._detect_corners()
            elif step.id == "thresholds":
                self.histogram.set_scores(None, None)
        self._when_idle(redo)

    def accept_result(self) -> None:
        self._decide(lambda step, reason: step.accept(reason))

    def skip_step(self) -> None:
        self._decide(lambda step, reason: step.skip(reason))

    def _decide(self, decision: Callable[[CalibrationStep, str], None]) -> None:
        step = self._step()
        if step is None:
            return
        page = self.step_pages[step.id]
        if step.id == "focus":
            self._focus_live = False

        def decide() -> None:
            self._pending = None
            try:
                decision(step, page.reason.text())
            except (ValueError, StepNotDone) as error:
                page.say(str(error)[:1].upper() + str(error)[1:])
                return
            page.say("")
            self._show_result(step, step.result)
        self._when_idle(decide)

    def next(self) -> None:
        step = self._step()
        if step is None:
            return
        self._focus_live = False

        def advance() -> None:
            try:
                self.wizard.advance()
            except StepNotDone as error:
                self.step_pages[step.id].say(str(error))
                return
            self._enter_current()
        self._when_idle(advance)

    def back(self) -> None:
        self._focus_live = False

        def back() -> None:
            try:
                self.wizard.back()
            except StepNotDone:
                return
            self._enter_current()
        self._when_idle(back)

    def _method_changed(self) -> None:
        step = self.wizard.get("thresholds")
        method = self.method_picker.currentData()
        criteria = getattr(step, "criteria", None)
        if criteria is not None:
            self.step_pages["thresholds"].criterion.setText(criteria.describe(method))

    def choose_run(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Validation run folder", self.run_field.text() or str(Path.home()))
        if folder:
            self.run_field.setText(folder)

    def reset_corners(self) -> None:
        def reset() -> None:
            self._tray_adjusted = False
            self._measure_on_next_frame(self.wizard.get("tray"))
        self._when_idle(reset)

    def _on_corners_moved(self, corners: tuple[tuple[float, float], ...]) -> None:
        def moved() -> None:
            self._tray_corners = tuple(corners)
            self._tray_adjusted = True
            self.step_pages["tray"].say("")
            self._measure_on_next_frame(self.wizard.get("tray"))
        self._when_idle(moved)

    def _detect_corners(self) -> None:
        step = self.wizard.get("tray")
        page = self.step_pages["tray"]

        def work(live: LiveFrame) -> tuple[Any, bool]:
            try:
                return step.detect(live.rgb), True   # type: ignore[attr-defined]
            except TrayNotFound:
                return tuple(map(tuple, central_region(live.rgb.shape).tolist())), False

        def done(future: Future) -> None:
            error = future.exception()
            if error is not None:
                page.say(_explain(error))
                return
            corners, found = future.result()
            self._tray_corners = tuple(corners)
            self._tray_adjusted = not found
            page.view.set_handles(corners)
            if found:
                page.say("Corners found automatically: check them, drag any that are off, "
                         "then Measure.", "info")
            else:
                page.say("The tray was not found automatically: drag the four handles onto "
                         "the tray's outer corners, then Measure.")
        self._wait_for_frame("tray", work, done)

    # -- pages ---------------------------------------------------------------------------

    def _enter_current(self) -> None:
        """Show the wizard's current step (or the summary) and start what it needs."""
        self._pending = None
        self._focus_live = False
        step = self._step()
        if step is None:
            self._show_summary()
            self.pages.setCurrentWidget(self.summary_page)
            self._refresh()
            return
        page = self.step_pages[step.id]
        self.pages.setCurrentWidget(page)
        latest = self.frames.latest
        if latest is not None and step.id != "thresholds":
            page.view.set_frame(latest.preview, latest.size)
        scene = self.scenes.get(step.id)
        if scene is not None and self.frames.can_change_source:
            self._scene_generation = self.frames.set_image_source(scene)
        else:
            self._scene_generation = self.frames.generation
        self._show_result(step, step.result)
        if step.id == "focus" and step.state is StepState.PENDING:
            self._focus_live = True
        elif step.id == "tray" and step.result is None and step.state is not StepState.SKIPPED:
            self._detect_corners()
        elif step.id == "exposure":
            self._show_camera_settings()
        self._refresh()

    def _show_camera_settings(self) -> None:
        settings = self.frames.settings
        self.camera_now.setText(
            f"Camera now: exposure {settings.exposure_us:.0f} µs · gain "
            f"{settings.gain_db:.1f} dB · white balance "
            f"{' / '.join(f'{g:.3f}' for g in settings.white_balance)}")

    def _show_summary(self) -> None:
        summary = self.wizard.summary()
        headlines = {step.id: headline(step, step.result) for step in self.wizard.steps
                     if step.result is not None}
        self.summary_page.show_summary(summary, headlines)

    def save(self) -> None:
        page = self.summary_page
        author = page.author.text().strip()
        note = page.note.text().strip()
        if not author:
            page.message.setText("Enter your name: it is recorded in the profile.")
            return
        if self.saved_version is not None:
            return

        def work() -> ProfileVersion:
            with tempfile.TemporaryDirectory(prefix="calibration-") as folder:
                settings_file = Path(folder) / "camera.pfs"
                self.frames.save_settings(settings_file).result(timeout=30)
                return self.wizard.save(author, note, camera_settings_file=settings_file)

        def done(future: Future) -> None:
            error = future.exception()
            if error is not None:
                page.message.setText(f"Not saved: {_explain(error)}")
                return
            version = future.result()
            self.saved_version = version
            page.message.setText("")
            page.saved.setText(f"Saved profile {version.label}: it is now current. The "
                               f"station uses it from its next start.")
            self.saved.emit(version)

        def start() -> None:
            page.message.setText("")
            self._start_job(work, done)
        self._when_idle(start)

    # -- showing state -------------------------------------------------------------------

    def _say_status(self, text: str, tone: str = "") -> None:
        self.status.setText(text)
        set_property(self.status, "tone", tone)

    def _refresh(self) -> None:
        """Buttons and chips as the wizard's state says."""
        step = self._step()
        for step_id, chip in self.chips.items():
            if step_id == "summary":
                tone = "pass" if self.saved_version is not None else ""
            else:
                tone = BADGES[self.wizard.get(step_id).state][1]
            set_property(chip, "state", tone)
            set_property(chip, "current", "true" if (
                (step is None and step_id == "summary") or
                (step is not None and step.id == step_id)) else "false")
        self.back_button.setEnabled(self.wizard.index > 0 and self.saved_version is None)
        self.next_button.setVisible(step is not None)
        if step is None:
            summary_ready = self.wizard.summary().ready
            self.summary_page.save_button.setEnabled(summary_ready
                                                     and self.saved_version is None)
            self.summary_page.close_button.setObjectName(
                "primaryButton" if self.saved_version is not None else "wizardButton")
            self.summary_page.close_button.style().polish(self.summary_page.close_button)
            return
        page = self.step_pages[step.id]
        state = step.state
        self.next_button.setEnabled(step.done)
        measured = step.result is not None
        if step.id == "focus":
            page.measure_button.setText("Hold reading" if self._focus_live else "Resume")
        else:
            page.measure_button.setText("Measure again" if measured else "Measure")
        page.measure_button.setEnabled(self._pending is None)
        page.redo_button.setEnabled(measured or state is StepState.SKIPPED)
        page.accept_button.setEnabled(state is StepState.FAILED
                                      and step.result is not None
                                      and step.result.measurement is not None)
        page.skip_button.setEnabled(state is not StepState.SKIPPED)
        if step.id == "exposure":
            card = step.result.measurement if step.result is not None else None
            self.apply_button.setEnabled(card is not None and not step.result.passed)
            self._show_camera_settings()

    # -- closing -------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._closing:
            self._closing = True
            self._pending = None
            self._focus_live = False
            self.frames.stop()               # lights off, camera closed
            self._executor.shutdown(wait=True, cancel_futures=True)
            self.closed.emit()
        super().closeEvent(event)


def _explain(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text[:1].upper() + text[1:]


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


# --------------------------------------------------------------------------- starting


def camera_profile(config: StationConfig, base: StationProfile | None) -> CameraProfile:
    """The camera settings the wizard starts from: the current profile's, else the
    configuration's (the station applies them in the same order)."""
    if base is not None and base.camera is not None:
        return base.camera
    camera = config.camera
    return CameraProfile(exposure_us=camera.exposure_us, gain_db=camera.gain_db,
                         white_balance=tuple(camera.white_balance),
                         pixel_format=camera.pixel_format, serial=camera.serial)


def lighting_profile(config: StationConfig,
                     base: StationProfile | None = None) -> LightingProfile:
    """The lighting the wizard calibrates at: the station's (the current profile's level,
    else the configuration's), so the photometry is measured as the station will light."""
    lighting = lighting_settings(config, base)
    return LightingProfile(brightness_percent=lighting.brightness_percent, mode=lighting.mode,
                           channels=tuple(lighting.channels),
                           pulse_width_us=lighting.pulse_width_us,
                           pulse_delay_us=lighting.pulse_delay_us)


class CalibrationSession(QObject):
    """The PIN dialog first; only once it opened the wizard, the camera, the lights and
    the wizard window. ``error`` holds why the devices could not be opened."""

    window_opened = pyqtSignal(object)
    finished = pyqtSignal()

    def __init__(self, config: StationConfig, image_source: Path | None = None,
                 run_dir: Path | None = None, *, pins: PinStore | None = None,
                 frame_interval_s: float = 0.1, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.config = config
        self.image_source = Path(image_source) if image_source is not None else None
        self.run_dir = run_dir
        self.frame_interval_s = frame_interval_s
        calibration = config.calibration
        self.pins = pins or PinStore(calibration.pin_file, calibration.pin_max_failures,
                                     calibration.pin_lockout_minutes)
        self.store = ProfileStore(calibration.profile_dir)
        try:
            self.base = self.store.current()
        except ProfileError as error:
            raise StationError(f"calibration profile: {error}"
                               + ("" if REPAIR_HINT in str(error)
                                  else f"; {REPAIR_HINT}")) from error
        self.window: CalibrationWindow | None = None
        self.lighting: Any = None
        self.error = ""               # why the devices did not open (shown in the dialog)
        self._devices: tuple[FrameSource, dict[str, Path]] | None = None
        self.dialog = PinDialog(self.pins, self._open_wizard, scale=config.ui.font_scale)
        self.dialog.accepted.connect(self._open_window)
        self.dialog.rejected.connect(self.finished.emit)

    @property
    def saved(self) -> ProfileVersion | None:
        return self.window.saved_version if self.window is not None else None

    def start(self) -> None:
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()

    def _open_wizard(self, pin: str) -> CalibrationWizard:
        """The PIN first (nothing is touched before it), then camera and lights: a device
        that does not open is told in the dialog, which stays open."""
        calibration = self.config.calibration
        wizard = open_wizard(self.pins, pin, self.store, station_id=self.config.station.id,
                             camera=camera_profile(self.config, self.base),
                             lighting=lighting_profile(self.config, self.base),
                             tray_size_mm=(calibration.tray_width_mm,
                                           calibration.tray_height_mm))
        try:
            self._devices = self._open_devices()
        except StationError as error:
            self.error = str(error)
            raise
        self.error = ""
        return wizard

    def _open_devices(self) -> tuple[FrameSource, dict[str, Path]]:
        from drivers.camera import CameraError
        from station_app.hardware import open_camera, open_lighting

        config = self.config
        scenes = step_scenes(self.image_source)
        first = scenes.get(SCENE_STEPS[0], self.image_source)
        camera = open_camera(config.camera, first)
        try:
            if self.base is not None and self.base.camera is not None:
                wanted = self.base.camera
                if wanted.settings_file:
                    camera.load_settings(self.store.root / wanted.settings_file)
                camera.apply(camera.settings().replace(
                    exposure_us=wanted.exposure_us, gain_db=wanted.gain_db,
                    white_balance=tuple(wanted.white_balance)))
            self.lighting = open_lighting(lighting_settings(config, self.base))
        except (CameraError, ValueError) as error:
            camera.close()
            raise StationError(f"camera: cannot apply the current profile: {error}") from error
        except BaseException:
            camera.close()
            raise
        reopen = None
        if config.camera.driver in ("emulated", "replay"):
            def reopen(source: Path) -> Any:
                return open_camera(config.camera, source)
        frames = FrameSource(camera, self.lighting.controller, reopen=reopen, source=first,
                             interval_s=self.frame_interval_s,
                             grab_timeout_ms=config.camera.grab_timeout_ms)
        return frames, scenes

    def _open_window(self) -> None:
        wizard: CalibrationWizard = self.dialog.opened
        frames, scenes = self._devices
        settings = frames.settings
        wizard.camera = dataclasses.replace(
            wizard.camera or camera_profile(self.config, self.base),
            exposure_us=settings.exposure_us, gain_db=settings.gain_db,
            white_balance=tuple(settings.white_balance), pixel_format=settings.pixel_format,
            serial=frames.camera.info.serial)
        window = CalibrationWindow(wizard, frames, scenes=scenes, run_dir=self.run_dir,
                                   station_name=self.config.station.name,
                                   font_scale=self.config.ui.font_scale)
        window.closed.connect(self._closed)
        self.window = window
        frames.start()
        # The station's screen often runs no window manager: size and activate the window
        # ourselves, as the operator window does.
        screen = window.screen()
        if self.config.ui.fullscreen:
            if screen is not None:
                window.setGeometry(screen.geometry())
            window.showFullScreen()
        else:
            if screen is not None:
                window.setGeometry(screen.availableGeometry())
            window.showMaximized()
        window.raise_()
        window.activateWindow()
        self.window_opened.emit(window)

    def _closed(self) -> None:
        if self.lighting is not None:
            self.lighting.close()
            self.lighting = None
        self.finished.emit()

    def close(self) -> None:
        """Close whatever is open (window: camera and lights released)."""
        if self.window is not None:
            self.window.close()
        if self.dialog.isVisible():
            self.dialog.reject()
        if self.lighting is not None:
            self.lighting.close()
            self.lighting = None


def run_calibration(config: StationConfig, image_source: Path | None = None,
                    run_dir: Path | None = None,
                    on_ready: Callable[[CalibrationSession], None] | None = None) -> int:
    """PIN, wizard, save; the exit code: 0 when a new profile version was saved."""
    from ui.app import application

    app = application()
    quit_on_last = app.quitOnLastWindowClosed()
    app.setQuitOnLastWindowClosed(False)     # the dialog hides before the window shows
    try:
        session = CalibrationSession(config, image_source, run_dir)
        session.finished.connect(app.quit)
        session.start()
        if on_ready is not None:
            on_ready(session)       # drive it from here with timers: the loop starts next
        try:
            app.exec()
        finally:
            session.close()
    finally:
        app.setQuitOnLastWindowClosed(quit_on_last)
    if session.error:
        raise StationError(session.error)
    if session.saved is not None:
        print(f"saved calibration profile {session.saved.label} ({session.saved.path}); "
              f"it is now current")
        return 0
    print("calibration closed without saving: the current profile is unchanged",
          file=sys.stderr)
    return 1
