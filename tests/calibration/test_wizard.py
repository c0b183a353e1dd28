"""The wizard's logic end to end on synthetic frames: steps, redo, accept, skip, save."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.pin import PinRejected, PinStore, ScryptParameters
from calibration.profile import (CameraProfile, LightingProfile, ProfileConflict,
                                 ProfileStore, StationProfile, ThresholdsProfile)
from calibration.threshold_step import DEFAULT_METHOD, ValidationScores
from calibration.wizard import (CalibrationWizard, ExposureStep, FlatFieldInput, FocusStep,
                                GreyCardInput, StepNotDone, StepState, ThresholdInput,
                                TrayInput, open_wizard)
from tests.calibration import synthetic

CAST = (1.2, 1.0, 0.85)


@pytest.fixture(scope="module")
def scenes():
    return {"tray": synthetic.scene(), "card": synthetic.scene(card=True),
            "empty": synthetic.scene(textured=False)}


def validation() -> ValidationScores:
    rng = np.random.default_rng(3)
    scores = np.r_[rng.beta(2, 8, 300), rng.beta(6, 3, 60)]
    labels = np.r_[np.zeros(300, bool), np.ones(60, bool)]
    return ValidationScores(labels, scores, "synthetic validation", {"scorer": "1.2.0"})


class Camera:
    """A stand-in for the camera the Qt wizard drives: settings in, synthetic frame out."""

    def __init__(self, exposure_us: float = 6000.0) -> None:
        self.exposure_us = exposure_us
        self.white_balance = (1.0, 1.0, 1.0)

    def grab(self, radiance, **options):
        return synthetic.capture(radiance, exposure=self.exposure_us / 8000, cast=CAST,
                                 white_balance=self.white_balance, **options)


def test_a_full_calibration_saves_a_profile_with_every_section(tmp_path, scenes):
    store = ProfileStore(tmp_path / "profiles")
    wizard = CalibrationWizard(
        store, station_id="bay-3", tray_size_mm=(600, 600),
        camera=CameraProfile(exposure_us=6000, pixel_format="RGB8Packed", serial="0815-0001"),
        lighting=LightingProfile(brightness_percent=80, channels=(1, 2, 3, 4)))
    camera = Camera()
    assert [s.id for s in wizard.steps] == ["focus", "exposure", "uniformity", "tray",
                                            "thresholds"]
    # 1. Focus: the technician turns the ring from blurred through sharp.
    for sigma in (2.5, 1.2, 0.0):
        result = wizard.measure(camera.grab(scenes["tray"].radiance, blur_sigma=sigma))
    assert result.passed and result.values["relative_percent"] == pytest.approx(100)
    assert wizard.advance().id == "exposure"
    # 2. Exposure and white balance: measure, apply the proposal, measure again.
    first = wizard.measure(GreyCardInput(camera.grab(scenes["card"].radiance),
                                         camera.exposure_us, camera.white_balance))
    assert not first.passed and not wizard.can_advance()
    with pytest.raises(StepNotDone, match="failed: redo it, or accept"):
        wizard.advance()
    card = first.measurement
    camera.exposure_us, camera.white_balance = card.suggested_exposure_us, card.white_balance
    second = wizard.measure(GreyCardInput(camera.grab(scenes["card"].radiance),
                                          camera.exposure_us, camera.white_balance))
    assert second.passed, second.details
    assert wizard.step.attempts == 2
    wizard.advance()
    # 3. Lighting uniformity on the empty tray with known vignetting.
    uniformity = wizard.measure(camera.grab(scenes["empty"].radiance, vignette=0.2))
    assert uniformity.passed, uniformity.details
    assert 15 < uniformity.values["falloff_percent"] < 25
    assert uniformity.overlay.image is not None
    wizard.advance()
    # 4. Tray geometry: detected corners shown, confirmed unchanged.
    frame = camera.grab(scenes["tray"].radiance)
    corners = wizard.step.detect(frame)
    assert np.abs(np.asarray(corners) - synthetic.TRAY_CORNERS).max() < 0.5
    tray = wizard.measure(TrayInput(frame))
    assert tray.passed and tray.overlay.shapes[0].editable
    wizard.advance()
    # 5. Thresholds from a validation run.
    thresholds = wizard.measure(ThresholdInput(validation(), DEFAULT_METHOD))
    assert thresholds.passed, thresholds.details
    assert thresholds.values["expected_fpr_percent"] <= 1.0
    assert wizard.advance() is None and wizard.at_summary
    # 6. Summary and save.
    summary = wizard.summary()
    assert summary.ready and [row.state for row in summary.rows] == [StepState.PASSED] * 5
    saved = wizard.save("ana", camera_settings_file=None)
    profile = store.current()
    assert saved.label == "v0001" and profile.author == "ana"
    assert profile.station_id == "bay-3" and profile.lighting.brightness_percent == 80
    assert profile.camera.exposure_us == pytest.approx(camera.exposure_us)
    np.testing.assert_allclose(profile.camera.white_balance, (1 / 1.2, 1.0, 1 / 0.85),
                               rtol=0.01)
    assert profile.camera.serial == "0815-0001" and profile.camera.focus_sharpness > 0
    assert profile.photometry.flat_field.falloff_percent == pytest.approx(
        uniformity.values["falloff_percent"])
    assert profile.photometry.grey_cast_percent < 3
    assert profile.tray.mm_per_frame_pixel == pytest.approx(600 / 610, rel=0.03)
    assert profile.thresholds.ok_below == thresholds.values["ok_below"]
    assert profile.thresholds.provenance.data_set == "synthetic validation"
    assert [step.id for step in profile.steps] == [s.id for s in wizard.steps]
    assert all(step.status == "passed" and step.measured_at for step in profile.steps)


def test_a_failed_step_goes_on_only_when_accepted_with_a_reason(tmp_path, scenes):
    store = ProfileStore(tmp_path)
    wizard = CalibrationWizard(store, steps=[ExposureStep(), FocusStep()])
    wizard.measure(GreyCardInput(Camera().grab(scenes["card"].radiance), 6000))
    with pytest.raises(ValueError, match="give a reason"):
        wizard.accept(" ")
    wizard.accept("grey card is worn; new one ordered")
    assert wizard.step.state is StepState.ACCEPTED
    wizard.advance()
    wizard.skip("lens untouched since last month")
    wizard.advance()
    summary = wizard.summary()
    assert summary.ready and summary.rows[1].summary == "skipped: kept from nothing " \
                                                       "(not calibrated)"
    wizard.save("ben")
    steps = {step.id: step for step in store.current().steps}
    assert steps["exposure"].status == "accepted"
    assert steps["exposure"].reason == "grey card is worn; new one ordered"
    assert steps["exposure"].summary.startswith("FAIL")
    assert steps["focus"].status == "skipped"


def test_redo_clears_the_result_and_measuring_again_clears_an_acceptance(tmp_path, scenes):
    wizard = CalibrationWizard(ProfileStore(tmp_path), steps=[ExposureStep()])
    frame = Camera().grab(scenes["card"].radiance)
    wizard.measure(GreyCardInput(frame, 6000))
    wizard.accept("for the test")
    wizard.measure(GreyCardInput(frame, 6000))
    assert wizard.step.state is StepState.FAILED and wizard.step.reason == ""
    wizard.redo()
    assert wizard.step.state is StepState.PENDING
    with pytest.raises(StepNotDone, match="not measured"):
        wizard.save("ana")
    assert ProfileStore(tmp_path).versions() == []


def test_skipped_steps_keep_the_base_profile_sections(tmp_path, scenes):
    store = ProfileStore(tmp_path)
    base = StationProfile(station_id="bay-3", camera=CameraProfile(exposure_us=5000),
                          thresholds=ThresholdsProfile(0.25, 0.75))
    store.save_new_version(base, "ana", "hand-made")
    wizard = CalibrationWizard(store)
    assert wizard.base.version == 1 and wizard.station_id == "bay-3"
    for step in wizard.steps[:-1]:
        wizard.skip("only the thresholds change after the model update")
        wizard.advance()
    wizard.measure(ThresholdInput(validation(), "max_f1"))
    wizard.advance()
    saved = wizard.save("ben", "new scorer")
    profile = store.current()
    assert saved.based_on == 1 and profile.camera == base.camera
    assert profile.thresholds.ok_below == profile.thresholds.damaged_above != 0.25
    assert profile.note == "new scorer"


def test_the_focus_step_does_not_pass_on_a_still_ring(tmp_path, scenes):
    wizard = CalibrationWizard(ProfileStore(tmp_path), steps=[FocusStep()])
    frame = Camera().grab(scenes["tray"].radiance)
    results = [wizard.measure(frame) for _ in range(4)]
    assert not any(result.passed for result in results) and not wizard.can_advance()
    assert "has not changed enough" in results[-1].details[0]
    assert "turn the focus ring through the sharpest point" in results[-1].details[0]
    assert "80% of the best or below" in results[-1].criterion


def test_saving_refuses_when_another_version_was_saved_while_open(tmp_path, scenes):
    store = ProfileStore(tmp_path)
    store.save_new_version(StationProfile(thresholds=ThresholdsProfile(0.25, 0.75)), "ana")
    wizard = CalibrationWizard(store)
    for step in wizard.steps:
        wizard.skip("only checking the save")
        wizard.advance()
    # Meanwhile a replay fitted new thresholds (v2): saving now would restore v1's.
    store.update_current("replay", "fitted", thresholds=ThresholdsProfile(0.3, 0.6))
    with pytest.raises(ProfileConflict, match="version v0002 was saved while the wizard was "
                                              "open .*reopen the wizard"):
        wizard.save("ben")
    assert store.current_version() == 2 and len(store.versions()) == 2
    reopened = CalibrationWizard(store)
    for step in reopened.steps:
        reopened.skip("only checking the save")
        reopened.advance()
    saved = reopened.save("ben")
    assert saved.based_on == 2 and store.current().thresholds.as_tuple() == (0.3, 0.6)


def test_navigation_back_and_go_to(tmp_path, scenes):
    wizard = CalibrationWizard(ProfileStore(tmp_path))
    with pytest.raises(StepNotDone, match="first step"):
        wizard.back()
    with pytest.raises(StepNotDone, match="not done yet"):
        wizard.go_to("tray")
    wizard.skip("not today")
    wizard.advance()
    assert wizard.back().id == "focus" and wizard.go_to("exposure").id == "exposure"
    with pytest.raises(KeyError, match="no wizard step 'colour'"):
        wizard.get("colour")


def test_uniformity_and_tray_steps_accept_given_regions_and_report_misses(tmp_path, scenes):
    wizard = CalibrationWizard(ProfileStore(tmp_path), tray_size_mm=(600, 600))
    uniformity = wizard.get("uniformity")
    frame = synthetic.capture(scenes["empty"].radiance, vignette=0.2)
    given = uniformity.measure(FlatFieldInput(frame, synthetic.TRAY_CORNERS))
    assert given.passed
    no_tray = uniformity.measure(np.full_like(frame, 120))
    assert any("tray not found" in note for note in no_tray.details)
    tray = wizard.get("tray").measure(TrayInput(np.full_like(frame, 90)))
    assert not tray.passed and "by hand" in tray.details[0]
    bad = wizard.get("tray").measure(TrayInput(frame, [[0, 0], [10, 0], [10, 10], [5, 5]]))
    assert not bad.passed and "do not form a tray outline" in bad.details[0]


def test_the_wizard_opens_only_with_the_technician_pin(tmp_path):
    pins = PinStore(tmp_path / "pin.json", parameters=ScryptParameters(n=2 ** 10))
    pins.set_pin("4711")
    store = ProfileStore(tmp_path / "profiles")
    with pytest.raises(PinRejected):
        open_wizard(pins, "1234", store)
    assert isinstance(open_wizard(pins, "4711", store, station_id="bay-3"), CalibrationWizard)


def test_frames_that_cannot_be_measured_fail_with_the_reason(tmp_path, scenes):
    wizard = CalibrationWizard(ProfileStore(tmp_path))
    dark = wizard.measure(np.zeros((120, 160, 3), np.uint8))
    assert not dark.passed and "too dark" in dark.details[0]
    with pytest.raises(StepNotDone, match="nothing was measured .*too dark.*skip"):
        wizard.accept("it is fine")
    wizard.skip("camera not touched")
    wizard.advance()
    no_card = wizard.measure(GreyCardInput(synthetic.tray_frame(), 6000))
    assert not no_card.passed and "no grey card found" in no_card.details[0]
    thresholds = wizard.get("thresholds").measure(ThresholdInput(validation(), "fpr:lots"))
    assert not thresholds.passed and "is not a number" in thresholds.details[0]
