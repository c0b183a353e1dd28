"""The station runs on the current calibration profile: its tray geometry, thresholds,
camera settings, and its version on every capture. Real parts: a replay camera over a
synthetic 12 MP frame, the lighting and scanner simulators, the bundled models, SQLite."""

from __future__ import annotations

import queue
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.profile import (CameraProfile, ProfileStore, StationProfile,
                                 ThresholdsProfile, TrayProfile)
from drivers.camera import ReplayCamera
from station_app.config import load_config
from station_app.errors import StationError
from station_app.station import UNCALIBRATED, open_station
from station_app.workflow import (Back, Confirm, ConfirmationSaved, ItemRejected, ItemTyped,
                                  SignIn, StateChanged, State, Trigger, VerdictReady)
from training.synth import render_capture
from training.synth.plan import plan_item

ITEM = "4006381333931"


@pytest.fixture(scope="module")
def scene():
    plan = plan_item(seed=3, index=0)
    return render_capture(plan.identity, plan.queries[0])


@pytest.fixture(scope="module")
def frames(tmp_path_factory, scene) -> Path:
    folder = tmp_path_factory.mktemp("profile_frames")
    assert cv2.imwrite(str(folder / "frame.bmp"), cv2.cvtColor(scene.frame, cv2.COLOR_RGB2BGR))
    return folder


@pytest.fixture
def config(tmp_path, frames):
    path = tmp_path / "station.yaml"
    path.write_text(f"data:\n  root: {tmp_path / 'data'}\n  min_free_gb: 0.1\n"
                    f"camera:\n  driver: replay\n  image_source: {frames}\n")
    return load_config(path, env={})


def _profile(corners, thresholds=(0.2, 0.6), exposure_us=4321.0) -> StationProfile:
    return StationProfile(
        station_id="station-01",
        camera=CameraProfile(exposure_us=exposure_us, white_balance=(1.1, 1.0, 0.9)),
        tray=TrayProfile(corners=tuple(map(tuple, np.asarray(corners).tolist())),
                         frame_size=(4096, 3000)),
        thresholds=ThresholdsProfile(*thresholds))


def _inspect(station) -> object:
    """Sign in, type the item, trigger: the VerdictReady or ItemRejected event."""
    events: queue.Queue = queue.Queue()
    station.workflow.subscribe(events.put)

    def wait(predicate, what):
        while True:
            event = events.get(timeout=60)
            if predicate(event):
                return event

    station.workflow.submit(SignIn("associate-7"))
    wait(lambda e: isinstance(e, StateChanged) and e.new is State.SIGNED_IN, "sign-in")
    station.workflow.submit(ItemTyped(ITEM))
    wait(lambda e: isinstance(e, StateChanged) and e.new is State.WAITING_FOR_ITEM, "item")
    station.workflow.submit(Trigger())
    outcome = wait(lambda e: isinstance(e, (VerdictReady, ItemRejected)), "verdict")
    if isinstance(outcome, VerdictReady):
        station.workflow.submit(Confirm(agree=True))
        wait(lambda e: isinstance(e, ConfirmationSaved), "confirmation")
    else:
        station.workflow.submit(Back())
    return outcome


def test_without_a_profile_the_tray_is_detected_and_captures_say_so(config, caplog):
    caplog.set_level("INFO", logger="station_app.station")
    with open_station(config, start_scanner=False) as station:
        assert station.profile is None and station.profile_version == UNCALIBRATED
        assert station.thresholds == (config.thresholds.ok_below,
                                      config.thresholds.damaged_above)
    warmed = [r.getMessage() for r in caplog.records if "warmed up" in r.getMessage()]
    assert len(warmed) == 1     # every model ran before the first item
    for model in ("scorer", "item_scorer", "reference_embedding", "segmenter"):
        assert re.search(rf"\b{model} \d+", warmed[0]), (model, warmed[0])


def test_the_current_profile_drives_geometry_thresholds_camera_and_capture_records(
        config, scene, tmp_path):
    store = ProfileStore(config.calibration.profile_dir)
    pfs = tmp_path / "camera.pfs"
    with ReplayCamera(config.camera.image_source) as camera:
        camera.save_settings(pfs)   # the file format the camera itself writes
    store.save_new_version(_profile(scene.corners), "ana", "calibrated",
                           camera_settings_file=pfs)
    with open_station(config, start_scanner=False) as station:
        assert station.profile_version == "v0001"
        assert station.thresholds == (0.2, 0.6)
        settings = station.devices.camera.settings()
        assert settings.exposure_us == 4321.0 and settings.white_balance == (1.1, 1.0, 0.9)
        verdict = _inspect(station)
        assert isinstance(verdict, VerdictReady), verdict
        record = station.store.get(verdict.capture_id)
        assert record.calibration_profile_version == "v0001"
        expected = "OK" if verdict.fused_score < 0.2 else (
            "DAMAGED" if verdict.fused_score > 0.6 else "REVIEW")
        assert verdict.label == expected

    # A profile whose tray lies elsewhere is used too: the frame is refused (tray moved)
    # rather than the tray being detected afresh.
    store.save_new_version(_profile(np.asarray(scene.corners) + (40.0, 0.0)), "ben", "bumped")
    with open_station(config, start_scanner=False) as station:
        assert station.profile_version == "v0002"
        rejected = _inspect(station)
        assert isinstance(rejected, ItemRejected)
        assert [code for code, _ in rejected.issues] == ["tray_moved"]


def test_a_profile_without_tray_geometry_detects_the_tray_and_records_both(config):
    ProfileStore(config.calibration.profile_dir).save_new_version(
        StationProfile(thresholds=ThresholdsProfile(0.25, 0.65)), "ana", "thresholds only")
    with open_station(config, start_scanner=False) as station:
        assert station.profile_version == "v0001; tray detected on the first frame"
        assert station.thresholds == (0.25, 0.65)


def test_a_broken_profile_store_stops_the_station_with_the_fix(config):
    store_dir = config.calibration.profile_dir
    store_dir.mkdir(parents=True)
    (store_dir / "v0001.yaml").write_text("format: 1\nversion: 1\nthresholds: {ok_below: 2}\n")
    with pytest.raises(StationError, match=r"calibration profile: .*v0001.yaml:3: "
                                           r"thresholds.damaged_above: is missing.*rollback"):
        open_station(config, start_scanner=False)


def test_the_station_lights_at_the_profile_level(config):
    """The photometry was measured at the profile's LED level, so the controller (the real
    simulator on a pseudo-terminal) is set to it, not to the configured level."""
    from calibration.profile import LightingProfile

    assert config.lighting.brightness_percent != 37.5
    ProfileStore(config.calibration.profile_dir).save_new_version(
        StationProfile(lighting=LightingProfile(brightness_percent=37.5, mode="continuous",
                                                channels=(1, 2))), "ana", "lights")
    with open_station(config, start_scanner=False) as station:
        lights = station.devices.lighting.controller
        lights.on()                                 # as the workflow does for a capture
        try:
            simulator = station.lighting_simulator
            assert [simulator.channel(c).percent for c in (1, 2)] == [37.5, 37.5]
        finally:
            lights.off()


def test_a_profile_measured_in_other_frame_sizes_stops_the_station_with_the_fix(config, scene):
    """The tray corners are frame pixels: a profile from 2048 x 1500 frames cannot place the
    tray in the camera's 4096 x 3000 ones."""
    half = StationProfile(tray=TrayProfile(
        corners=tuple(map(tuple, (np.asarray(scene.corners) / 2).tolist())),
        frame_size=(2048, 1500)))
    ProfileStore(config.calibration.profile_dir).save_new_version(half, "ana", "other camera")
    with pytest.raises(StationError, match=r"v0001: tray.frame_size is 2048x1500 but the "
                                           r"camera delivers 4096x3000 frames.*recalibrate "
                                           r"the tray step with `station-app calibrate`"):
        open_station(config, start_scanner=False)


def test_thresholds_fitted_on_other_model_versions_are_used_with_a_warning(config, scene,
                                                                          caplog):
    from calibration.thresholds import ThresholdProvenance

    provenance = ThresholdProvenance(data_set="val-0412", model_versions={"scorer": "0.0.1"},
                                     date="2025-01-01", method="fpr", parameters={},
                                     expected_recall=0.9, expected_fpr=0.01)
    ProfileStore(config.calibration.profile_dir).save_new_version(
        _profile(scene.corners).replace(thresholds=ThresholdsProfile(0.2, 0.6, provenance)),
        "ana", "old models")
    with caplog.at_level("WARNING", logger="station_app.station"), \
            open_station(config, start_scanner=False) as station:
        assert station.thresholds == (0.2, 0.6)            # still used: the station runs
        loaded = station.model_versions["scorer"]
    assert loaded != "0.0.1"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"
                and "fitted with other model versions" in r.getMessage()]
    assert len(warnings) == 1 and f"scorer 0.0.1 (loaded: {loaded})" in warnings[0]
    assert "v0001" in warnings[0]


def test_thresholds_fitted_on_the_loaded_models_give_no_warning(config, scene, caplog):
    from calibration.thresholds import ThresholdProvenance

    with open_station(config, start_scanner=False) as station:   # which versions are loaded
        loaded = dict(station.model_versions)
    provenance = ThresholdProvenance(data_set="val", model_versions={"scorer": loaded["scorer"]},
                                     date="2025-01-01", method="fpr", parameters={},
                                     expected_recall=0.9, expected_fpr=0.01)
    ProfileStore(config.calibration.profile_dir).save_new_version(
        _profile(scene.corners).replace(thresholds=ThresholdsProfile(0.2, 0.6, provenance)),
        "ana", "current models")
    with caplog.at_level("WARNING", logger="station_app.station"), \
            open_station(config, start_scanner=False):
        pass
    assert not [r for r in caplog.records if "other model versions" in r.getMessage()]
