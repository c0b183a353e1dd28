"""The real calibration wizard window, offscreen, driven end to end as a technician would.

Real parts: the PIN file (scrypt), pypylon's emulated camera (``PYLON_CAMEMU``, set in
tests/conftest.py) serving synthetic frames written as PNG files, the lighting
controller simulator on a pseudo-terminal, the profile store in ``tmp_path``. The
emulated camera serves a folder; the wizard's ``--image-source`` convention of one
sub-folder per step (focus, exposure, uniformity, tray) stands for what the technician
puts in the tray, and the window switches the camera to a step's folder when the step
opens. The focus step's folder shows the tray out of focus (the ring not turned yet); the
test switches to a sharp scene and back, to stand for turning the focus ring through the
sharp point. The camera's white balance is real (the driver applies it in
software, the emulator has no balance ratios); the emulator ignores exposure, so the
grey-card scene is drawn at the right level and only its colour cast needs correcting.
The validation run is a run folder written with the replay's own ``ResultLog`` (a real
replay needs the training extra and minutes; tests/station_app/test_replay.py covers it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PyQt6.QtCore import QPointF, Qt, QTimer
from PyQt6.QtWidgets import QApplication

from calibration.pin import PinStore, ScryptParameters
from calibration.profile import ProfileStore
from calibration.wizard import StepState
from drivers.lighting.state import ChannelMode
from station_app.cli import main
from station_app.config import load_config
from station_app.replay.results import ResultLog
from station_app.replay.runner import RUN_FORMAT_VERSION
from tests.calibration import synthetic
from ui.calibration.overlay_view import MAP_LAYER
from ui.calibration.pin_dialog import PinDialog
from ui.calibration.wizard_window import CalibrationSession, CalibrationWindow, run_calibration

PIN = "2468"
CAST = (1.2, 1.0, 0.85)        # the LED light's colour, as every scene is lit
WAIT_MS = 20_000


def write_png(folder: Path, rgb: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "frame.png"
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    """960 x 720 synthetic frames, one sub-folder per step (focus: out of focus), plus
    the tray in focus."""
    root = tmp_path_factory.mktemp("calibration_scenes")
    frames = root / "frames"
    write_png(frames / "focus", synthetic.tray_frame(cast=CAST, blur_sigma=3.0))
    # The card drawn at the target level: the emulator serves files as they are.
    card = synthetic.scene(card=True)
    write_png(frames / "exposure", synthetic.capture(card.radiance, exposure=1.03, cast=CAST))
    empty = synthetic.scene(textured=False)
    write_png(frames / "uniformity", synthetic.capture(empty.radiance, cast=CAST,
                                                        vignette=0.2))
    write_png(frames / "tray", synthetic.tray_frame(cast=CAST))
    write_png(root / "focus-sharp", synthetic.tray_frame(cast=CAST))
    return root


@pytest.fixture(scope="module")
def validation_run(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    """A finished replay run folder: 300 good and 60 damaged captures' fused scores."""
    run = tmp_path_factory.mktemp("validation") / "run"
    run.mkdir()
    rng = np.random.default_rng(3)
    scores = np.r_[rng.beta(2, 8, 300), rng.beta(6, 3, 60)]
    labels = np.r_[np.zeros(300, bool), np.ones(60, bool)]
    (run / "run.json").write_text(json.dumps({
        "format_version": RUN_FORMAT_VERSION,
        "source": {"root": "synthetic validation", "split": "validation"},
        "models": {"scorer": {"name": "scorer", "version": "1.2.0"}}, "thresholds": None}))
    log = ResultLog(run / "results.jsonl")
    for index, (label, score) in enumerate(zip(labels, scores)):
        log.append({"capture_id": f"v{index:04d}", "status": "scored", "defect": bool(label),
                    "major_defect": bool(label), "defect_types": [], "fused": float(score),
                    "p_any": float(score), "verdict": None})
    return run, labels, scores


def write_config(folder: Path) -> Path:
    path = folder / "station.yaml"
    path.write_text(f"""\
data:
  root: {folder / 'data'}
  min_free_gb: 0.1
camera:
  driver: emulated
  serial: "0815-0001"
  pixel_format: RGB8Packed
  width: 960
  height: 720
calibration:
  profile_dir: {folder / 'profiles'}
  pin_file: {folder / 'pin.json'}
  pin_max_failures: 3
  tray_width_mm: 600
  tray_height_mm: 600
""")
    return path


@pytest.fixture
def config(tmp_path):
    config = load_config(write_config(tmp_path))
    PinStore(config.calibration.pin_file, parameters=ScryptParameters(n=2 ** 10)).set_pin(PIN)
    return config


def click(qtbot, widget) -> None:
    assert widget.isEnabled(), f"{widget.text()!r} is disabled"
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def settled(window: CalibrationWindow) -> bool:
    return window.idle


def lights(session: CalibrationSession) -> set[ChannelMode]:
    simulator = session.lighting.simulator
    return {simulator.channel(channel).mode for channel in (1, 2, 3, 4)}


def test_a_technician_calibrates_the_station_end_to_end(qtbot, config, scenes,
                                                        validation_run):
    run_dir, labels, scores = validation_run
    session = CalibrationSession(config, scenes / "frames", run_dir, frame_interval_s=0.05)
    qtbot.addWidget(session.dialog)
    session.start()
    qtbot.waitExposed(session.dialog)
    assert session.window is None and session.lighting is None   # nothing before the PIN

    # The PIN: a wrong one first, then the right one opens camera, lights and window.
    for digit in "1357":
        click(qtbot, session.dialog.keys[digit])
    click(qtbot, session.dialog.enter_button)
    assert "2 attempts left" in session.dialog.message.text() and session.window is None
    for digit in PIN:
        click(qtbot, session.dialog.keys[digit])
    with qtbot.waitSignal(session.window_opened, timeout=WAIT_MS):
        click(qtbot, session.dialog.enter_button)
    window = session.window
    qtbot.addWidget(window)
    window.resize(1360, 860)
    qtbot.waitExposed(window)
    wizard = window.wizard
    qtbot.waitUntil(lambda: lights(session) == {ChannelMode.CONTINUOUS},  # lit, live view
                    timeout=WAIT_MS)

    # 1. Focus: live readings on every frame. The ring is not turned yet: however many
    # readings of the same blurred tray come in, none passes.
    focus = wizard.get("focus")
    page = window.page("focus")
    blurred, sharp = scenes / "frames" / "focus", scenes / "focus-sharp"
    assert window.focus_live and page.measure_button.text() == "Hold reading"
    qtbot.waitUntil(lambda: focus.result is not None
                    and focus.result.values.get("readings", 0) >= 4, timeout=WAIT_MS)
    assert not focus.result.passed and "has not changed enough" in focus.result.details[0]
    assert "80% of the best or below" in focus.result.criterion
    qtbot.waitUntil(lambda: page.verdict.text() == "FAIL", timeout=WAIT_MS)
    assert not window.next_button.isEnabled()
    # Turning the ring to the sharp point: the bar climbs to the best seen and passes.
    window.frames.set_image_source(sharp)
    qtbot.waitUntil(lambda: page.verdict.text() == "PASS", timeout=WAIT_MS)
    assert window.focus_bar.value() == 100 and "Best sharpness" in window.focus_best.text()
    assert window.next_button.isEnabled()
    # The ring turned past the sharp point: readings fall far below the best.
    window.frames.set_image_source(blurred)
    qtbot.waitUntil(lambda: focus.result is not None and not focus.result.passed
                    and focus.result.values["relative_percent"] < 60, timeout=WAIT_MS)
    click(qtbot, page.measure_button)                             # Hold reading
    qtbot.waitUntil(lambda: settled(window), timeout=WAIT_MS)
    assert focus.state is StepState.FAILED and page.verdict.text() == "FAIL"
    assert page.verdict.property("state") == "fail"
    assert window.focus_bar.value() < 60 and page.measure_button.text() == "Resume"
    assert not window.next_button.isEnabled() and page.accept_button.isEnabled()
    window.next()                                                 # refused
    assert wizard.step is focus and "accept the result with a reason" in page.message.text()
    click(qtbot, page.accept_button)                              # no reason: refused
    assert focus.state is StepState.FAILED and "reason" in page.message.text()
    page.reason.setText("lens ring stiff, ordered a new one")
    click(qtbot, page.accept_button)
    assert focus.state is StepState.ACCEPTED and page.verdict.text() == "FAIL · ACCEPTED"
    assert window.next_button.isEnabled()
    # Better: redo it (from scratch, the ring still off), turning to the sharp point.
    click(qtbot, page.redo_button)
    qtbot.waitUntil(lambda: focus.result is not None
                    and focus.result.values.get("readings", 0) >= 2, timeout=WAIT_MS)
    assert focus.state is StepState.FAILED
    window.frames.set_image_source(sharp)
    qtbot.waitUntil(lambda: focus.state is StepState.PASSED, timeout=WAIT_MS)
    click(qtbot, page.measure_button)                             # Hold reading
    qtbot.waitUntil(lambda: settled(window), timeout=WAIT_MS)
    assert focus.state is StepState.PASSED and page.verdict.text() == "PASS"
    assert focus.result.values["relative_percent"] == pytest.approx(100)
    click(qtbot, window.next_button)

    # 2. Exposure and white balance: the light's cast fails; the proposal fixes it.
    exposure = wizard.get("exposure")
    page = window.page("exposure")
    assert wizard.step is exposure and window.current_page is page
    click(qtbot, page.measure_button)
    qtbot.waitUntil(lambda: exposure.result is not None and settled(window), timeout=WAIT_MS)
    assert exposure.state is StepState.FAILED and page.verdict.text() == "FAIL"
    assert any("not neutral" in note for note in exposure.result.details)
    assert "colour cast" in page.headline.text()
    click(qtbot, window.apply_button)
    qtbot.waitUntil(lambda: exposure.attempts == 2 and settled(window), timeout=WAIT_MS)
    assert exposure.state is StepState.PASSED, exposure.result.details
    np.testing.assert_allclose(window.frames.settings.white_balance,
                               (1 / 1.2, 1.0, 1 / 0.85), rtol=0.01)
    assert "white balance 0.83" in window.camera_now.text()
    click(qtbot, window.next_button)

    # 3. Lighting uniformity on the empty tray: known vignetting, the map shown.
    uniformity = wizard.get("uniformity")
    page = window.page("uniformity")
    click(qtbot, page.measure_button)
    qtbot.waitUntil(lambda: uniformity.result is not None and settled(window),
                    timeout=WAIT_MS)
    assert uniformity.state is StepState.PASSED, uniformity.result.details
    assert 15 < uniformity.result.values["falloff_percent"] < 25
    assert page.view.layer(MAP_LAYER) is not None and "Corner fall-off" in page.headline.text()
    click(qtbot, window.next_button)

    # 4. Tray geometry: corners detected on opening, confirmed, one dragged, reset.
    tray = wizard.get("tray")
    page = window.page("tray")
    view = page.view
    qtbot.waitUntil(lambda: len(view.handles) == 4 and settled(window), timeout=WAIT_MS)
    assert np.abs(np.asarray(view.handles) - synthetic.TRAY_CORNERS).max() < 0.5
    click(qtbot, page.measure_button)
    qtbot.waitUntil(lambda: tray.result is not None and settled(window), timeout=WAIT_MS)
    assert tray.state is StepState.PASSED and tray.result.values["corners_source"] == "automatic"
    good_rms = tray.result.values["reprojection_rms_px"]
    assert good_rms < 1.5
    # Drag the top-right corner 25 frame pixels right and 12 down with the mouse.
    x, y = view.handles[1]
    start = view.frame_to_widget(x, y).toPoint()
    end = view.frame_to_widget(x + 25, y + 12).toPoint()
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(view, QPointF(start + (end - start) / 2).toPoint())
    qtbot.mouseMove(view, end)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=end)
    qtbot.waitUntil(lambda: tray.attempts == 2 and settled(window), timeout=WAIT_MS)
    assert tray.result.values["corners_source"] == "adjusted"
    assert tray.state is StepState.FAILED and page.verdict.text() == "FAIL"
    assert tray.result.values["reprojection_rms_px"] > 3 * good_rms
    dragged = np.asarray(tray.result.measurement.geometry.corners)[1]
    np.testing.assert_allclose(dragged, synthetic.TRAY_CORNERS[1] + (25, 12), atol=2.5)
    click(qtbot, window.reset_corners_button)
    qtbot.waitUntil(lambda: tray.attempts == 3 and settled(window), timeout=WAIT_MS)
    assert tray.state is StepState.PASSED
    assert tray.result.values["corners_source"] == "automatic"
    window.grab()                                   # the overlay paints without error
    click(qtbot, window.next_button)

    # 5. Thresholds from the validation run, with the default method.
    thresholds = wizard.get("thresholds")
    page = window.page("thresholds")
    assert window.run_field.text() == str(run_dir)
    assert window.method_picker.currentText().startswith("At most 1 % of good items sidelined")
    window.run_field.setText(str(run_dir.parent / "no-such-run"))
    click(qtbot, page.measure_button)
    qtbot.waitUntil(lambda: settled(window), timeout=WAIT_MS)
    assert "not a replay run" in page.message.text() and thresholds.result is None
    window.run_field.setText(str(run_dir))
    # Another method, in words: one threshold, no REVIEW band.
    window.method_picker.setCurrentIndex(window.method_picker.findData("max_f1"))
    assert window.method_picker.currentText().startswith("Best F1")
    assert "'max_f1'" in page.criterion.text()
    click(qtbot, page.measure_button)
    qtbot.waitUntil(lambda: thresholds.result is not None and settled(window),
                    timeout=WAIT_MS)
    best_f1 = thresholds.result.values["ok_below"]
    assert thresholds.result.values["damaged_above"] == best_f1
    assert window.histogram.counts == (300, 60)
    window.method_picker.setCurrentIndex(window.method_picker.findData(
        "fpr:0.01,precision:0.9"))
    click(qtbot, page.measure_button)
    qtbot.waitUntil(lambda: thresholds.attempts == 2 and settled(window), timeout=WAIT_MS)
    assert thresholds.state is StepState.PASSED, thresholds.result.details
    assert thresholds.result.values["ok_below"] != best_f1
    values = thresholds.result.values
    assert values["expected_fpr_percent"] <= 1.0 and values["expected_recall_percent"] > 20
    assert f"Expected recall {values['expected_recall_percent']:.1f} %" in page.headline.text()
    click(qtbot, window.next_button)

    # 6. Summary and save.
    summary = window.summary_page
    assert window.current_page is summary and wizard.at_summary
    assert [cells[1].text() for cells in summary.rows] == ["PASS"] * 5
    assert summary.save_button.isEnabled()
    summary.author.setText("ana")
    summary.note.setText("new LED panel")
    with qtbot.waitSignal(window.saved, timeout=WAIT_MS):
        click(qtbot, summary.save_button)
    assert "v0001" in summary.saved.text() and not summary.save_button.isEnabled()

    store = ProfileStore(config.calibration.profile_dir)
    profile = store.current()
    assert profile.label == "v0001" and profile.author == "ana"
    assert profile.note == "new LED panel" and profile.station_id == "station-01"
    np.testing.assert_allclose(profile.tray.corners, synthetic.TRAY_CORNERS, atol=0.5)
    assert profile.tray.frame_size == (960, 720)
    assert profile.tray.mm_per_frame_pixel == pytest.approx(600 / 610, rel=0.03)
    np.testing.assert_allclose(profile.camera.white_balance, (1 / 1.2, 1.0, 1 / 0.85),
                               rtol=0.01)
    assert profile.camera.serial == "0815-0001" and profile.camera.focus_sharpness > 0
    assert profile.camera.settings_file == "v0001.pfs"
    assert (store.root / "v0001.pfs").stat().st_size > 0
    assert profile.photometry.grey_cast_percent < 3
    assert profile.photometry.flat_field.falloff_percent == pytest.approx(
        uniformity.result.values["falloff_percent"])
    assert profile.thresholds.ok_below == pytest.approx(values["ok_below"])
    assert profile.thresholds.damaged_above == pytest.approx(values["damaged_above"])
    assert str(run_dir) in profile.thresholds.provenance.data_set
    assert profile.lighting.brightness_percent == 80
    assert {step.id: step.status for step in profile.steps} == {
        "focus": "passed", "exposure": "passed", "uniformity": "passed", "tray": "passed",
        "thresholds": "passed"}

    # Closing releases the camera and puts the lights out.
    simulator = session.lighting.simulator
    with qtbot.waitSignal(session.finished, timeout=WAIT_MS):
        click(qtbot, summary.close_button)
    assert {simulator.channel(c).mode for c in (1, 2, 3, 4)} == {ChannelMode.OFF}
    assert not window.frames.camera.is_open and session.lighting is None
    assert session.saved.label == "v0001"


def test_calibrate_without_a_screen_exits_1_naming_the_fix(tmp_path, monkeypatch, capsys):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert main(["calibrate", "--config", str(write_config(tmp_path))]) == 1
    error = capsys.readouterr().err
    assert "station-app calibrate: the calibration wizard needs a screen" in error
    assert "DISPLAY" in error and len(error.strip().splitlines()) == 1


def test_calibrate_without_a_technician_pin_says_how_to_set_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert main(["calibrate", "--config", str(write_config(tmp_path))]) == 1
    assert "station-app profile set-pin" in capsys.readouterr().err


def test_calibrate_cancelled_at_the_pin_saves_nothing_and_exits_1(qapp, tmp_path, config,
                                                                  scenes, monkeypatch, capsys):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    seen: list[PinDialog] = []

    def cancel() -> None:
        dialogs = [w for w in QApplication.topLevelWidgets()
                   if isinstance(w, PinDialog) and w.isVisible()]
        if not dialogs:
            QTimer.singleShot(50, cancel)
            return
        seen.extend(dialogs)
        dialogs[0].reject()
    QTimer.singleShot(50, cancel)
    assert main(["calibrate", "--config", str(tmp_path / "station.yaml"),
                 "--image-source", str(scenes / "frames")]) == 1
    assert len(seen) == 1 and seen[0].blocked is False
    assert "closed without saving" in capsys.readouterr().err
    assert ProfileStore(config.calibration.profile_dir).versions() == []
    assert os.environ["QT_QPA_PLATFORM"] == "offscreen"


def test_run_calibration_skipping_every_step_saves_a_version_and_exits_0(qapp, config, scenes,
                                                                         capsys):
    def drive(window: CalibrationWindow) -> None:
        if window.busy:
            QTimer.singleShot(20, lambda: drive(window))
            return
        step = window.wizard.step
        if step is None:
            window.saved.connect(lambda version: window.close())
            window.summary_page.author.setText("ben")
            window.save()
            return
        window.page(step.id).reason.setText("only the camera settings file changes")
        window.skip_step()
        window.next()
        QTimer.singleShot(20, lambda: drive(window))

    def on_ready(session: CalibrationSession) -> None:
        session.window_opened.connect(lambda window: QTimer.singleShot(0, lambda: drive(window)))
        session.dialog.entry.setText(PIN)
        QTimer.singleShot(0, session.dialog.submit)

    assert run_calibration(config, scenes / "frames", None, on_ready=on_ready) == 0
    assert "saved calibration profile v0001" in capsys.readouterr().out
    profile = ProfileStore(config.calibration.profile_dir).current()
    assert profile.author == "ben" and profile.tray is None and profile.thresholds is None
    assert {step.status for step in profile.steps} == {"skipped"} and len(profile.steps) == 5
    assert profile.camera.serial == "0815-0001" and profile.camera.settings_file == "v0001.pfs"
    assert QApplication.instance().quitOnLastWindowClosed()    # left as it was found


def test_a_camera_that_does_not_open_is_told_in_the_pin_dialog(qtbot, tmp_path, scenes):
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace('"0815-0001"', '"9999-0000"'))
    config = load_config(path)
    PinStore(config.calibration.pin_file, parameters=ScryptParameters(n=2 ** 10)).set_pin(PIN)
    session = CalibrationSession(config, scenes / "frames")
    qtbot.addWidget(session.dialog)
    session.start()
    session.dialog.entry.setText(PIN)
    session.dialog.submit()
    message = session.dialog.message.text()
    assert message.startswith("Calibration cannot start: camera") and "9999-0000" in message
    assert session.window is None and session.lighting is None and session.dialog.isVisible()
    assert "9999-0000" in session.error
    with qtbot.waitSignal(session.finished, timeout=WAIT_MS):
        qtbot.mouseClick(session.dialog.cancel_button, Qt.MouseButton.LeftButton)


def test_the_wizard_lights_at_the_station_level_and_refuses_to_overwrite_a_newer_version(
        qtbot, config, scenes):
    """The station lights at the current profile's level (station_app.station
    ``lighting_settings``), so the wizard measures at it too; a version saved while the
    window is open (a replay fitting thresholds) is not silently undone by saving."""
    from calibration.profile import LightingProfile, StationProfile, ThresholdsProfile

    store = ProfileStore(config.calibration.profile_dir)
    assert config.lighting.brightness_percent != 37.5
    store.save_new_version(StationProfile(
        lighting=LightingProfile(brightness_percent=37.5, channels=(1, 2, 3, 4)),
        thresholds=ThresholdsProfile(0.2, 0.7)), "ana", "lights at 37.5 %")
    session = CalibrationSession(config, scenes / "frames", frame_interval_s=0.05)
    qtbot.addWidget(session.dialog)
    session.start()
    session.dialog.entry.setText(PIN)
    with qtbot.waitSignal(session.window_opened, timeout=WAIT_MS):
        session.dialog.submit()
    window = session.window
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: lights(session) == {ChannelMode.CONTINUOUS}, timeout=WAIT_MS)
    simulator = session.lighting.simulator
    assert {simulator.channel(c).percent for c in (1, 2, 3, 4)} == {37.5}
    assert window.wizard.lighting.brightness_percent == 37.5
    while window.wizard.step is not None:
        qtbot.waitUntil(lambda: not window.busy, timeout=WAIT_MS)
        window.page(window.wizard.step.id).reason.setText("checking the save only")
        window.skip_step()
        window.next()
    qtbot.waitUntil(lambda: not window.busy, timeout=WAIT_MS)
    # Meanwhile: `station-app replay --fit-thresholds` saves v0002.
    store.update_current("replay", "fitted", thresholds=ThresholdsProfile(0.3, 0.6))
    page = window.summary_page
    page.author.setText("ben")
    window.save()
    qtbot.waitUntil(lambda: page.message.text().startswith("Not saved"), timeout=WAIT_MS)
    assert ("Version v0002 was saved while the wizard was open" in page.message.text()
            and "reopen the wizard" in page.message.text())
    assert store.current_version() == 2 and store.current().thresholds.as_tuple() == (0.3, 0.6)
    assert window.saved_version is None
    with qtbot.waitSignal(session.finished, timeout=WAIT_MS):
        window.close()
