"""Station profiles: versioned store, rollback, atomic files, validation naming file and field."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from calibration.photometry import FlatField
from calibration.profile import (CameraProfile, LightingProfile, PhotometryProfile,
                                 ProfileConflict, ProfileError, ProfileStore, StationProfile,
                                 StepRecord,
                                 ThresholdsProfile, TrayProfile, load_profile, parse_version,
                                 profile_from_yaml, version_label)
from calibration.thresholds import ThresholdProvenance
from engines.tray_geometry import TrayGeometry

CORNERS = ((742.0, 171.0), (3385.0, 128.0), (3431.0, 2812.0), (781.0, 2851.0))


def full_profile() -> StationProfile:
    provenance = ThresholdProvenance(
        data_set="synthetic validation, replay runs/val", model_versions={"scorer": "1.2.0"},
        date="2025-05-01T09:00:00+00:00", method="ok_below: fpr<=0.01; damaged_above: "
                                               "precision>=0.9",
        parameters={"notes": [], "good_captures": 412}, expected_recall=0.83,
        expected_fpr=0.0097)
    return StationProfile(
        station_id="bay-3",
        camera=CameraProfile(exposure_us=7800.0, gain_db=0.0, white_balance=(1.21, 1.0, 1.43),
                             pixel_format="BayerRG8", serial="40012345", focus_sharpness=0.41),
        lighting=LightingProfile(brightness_percent=80.0, channels=(1, 2, 3, 4)),
        tray=TrayProfile(corners=CORNERS, frame_size=(4096, 3000), tray_size_mm=(600.0, 600.0),
                         mm_per_frame_pixel=0.2241, mm_per_tray_pixel=(0.293, 0.293),
                         reprojection_error_px=0.21),
        photometry=PhotometryProfile(grey_level=0.452, grey_cast_percent=0.8,
                                     flat_field=FlatField(2, (1.0, 0.01, -0.02, -0.3, 0.0,
                                                              -0.25), (4096, 3000), 21.5)),
        thresholds=ThresholdsProfile(0.31, 0.74, provenance),
        steps=(StepRecord("focus", "passed", "within 10 %", "PASS: sharpness 0.41"),
               StepRecord("uniformity", "accepted", "fall-off <= 30 %", "FAIL: 33 %",
                          reason="left panel replaced next week")))


def test_a_profile_round_trips_through_yaml_with_every_section():
    profile = full_profile()
    again = profile_from_yaml(profile.to_yaml(), "test.yaml")
    assert again == profile
    assert again.tray.geometry() == TrayGeometry.from_array(CORNERS)
    np.testing.assert_allclose(np.asarray(again.tray.homography),
                               TrayGeometry.from_array(CORNERS).homography)
    assert again.thresholds.provenance.model_versions == {"scorer": "1.2.0"}


def test_save_numbers_versions_records_who_when_why_and_moves_current(tmp_path):
    store = ProfileStore(tmp_path / "profiles")
    assert store.current() is None and store.versions() == []
    first = store.save_new_version(full_profile(), "ana", "first calibration",
                                   created="2025-05-01T10:00:00+00:00")
    second = store.save_new_version(store.current().replace(
        thresholds=ThresholdsProfile(0.2, 0.8)), "ben", "stricter")
    assert (first.label, second.label) == ("v0001", "v0002")
    assert (tmp_path / "profiles" / "current").read_text() == "v0002\n"
    assert store.current().version == 2 and store.current().thresholds.ok_below == 0.2
    assert store.get(1).thresholds.ok_below == 0.31
    listed = store.versions()
    assert [(v.version, v.author, v.note, v.based_on, v.current) for v in listed] == [
        (1, "ana", "first calibration", None, False), (2, "ben", "stricter", 1, True)]
    assert listed[0].created == "2025-05-01T10:00:00+00:00"
    assert sorted(p.name for p in (tmp_path / "profiles").iterdir()) == [
        ".lock", "current", "v0001.yaml", "v0002.yaml"]  # no temporary files left


def test_the_camera_settings_file_is_copied_beside_every_version(tmp_path):
    pfs = tmp_path / "camera.pfs"
    pfs.write_bytes(b"# pylon features\nExposureTime\t7800\n")
    store = ProfileStore(tmp_path / "profiles")
    store.save_new_version(full_profile(), "ana", camera_settings_file=pfs)
    pfs.write_bytes(b"changed afterwards")
    assert store.get(1).camera.settings_file == "v0001.pfs"
    assert store.settings_file(1).read_bytes() == b"# pylon features\nExposureTime\t7800\n"
    # A later version made from this one carries its own copy.
    store.save_new_version(store.current().replace(note="x"), "ben", "thresholds only")
    assert store.get(2).camera.settings_file == "v0002.pfs"
    assert store.settings_file(2).read_bytes() == store.settings_file(1).read_bytes()
    with pytest.raises(ProfileError, match="not an existing .pfs"):
        store.save_new_version(full_profile(), "ana", camera_settings_file=tmp_path / "x.pfs")
    with pytest.raises(ProfileError, match="no camera section"):
        store.save_new_version(StationProfile(), "ana", camera_settings_file=pfs)
    assert store.latest_version() == 2


def test_rollback_copies_an_old_version_into_a_new_one_and_keeps_history(tmp_path):
    pfs = tmp_path / "camera.pfs"
    pfs.write_bytes(b"v1 settings")
    store = ProfileStore(tmp_path)
    store.save_new_version(full_profile(), "ana", "good", camera_settings_file=pfs)
    pfs.write_bytes(b"v2 settings")
    store.save_new_version(full_profile().replace(thresholds=ThresholdsProfile(0.5, 0.6)),
                           "ben", "bad idea", camera_settings_file=pfs)
    before = store.path(2).read_bytes()
    rolled = store.rollback("v0001", "ana", "scores drifted")
    assert rolled.label == "v0003" and rolled.based_on == 1
    assert rolled.note == "rollback to v0001: scores drifted"
    current = store.current()
    assert current.version == 3 and current.thresholds == full_profile().thresholds
    assert store.settings_file(3).read_bytes() == b"v1 settings"
    assert store.path(2).read_bytes() == before   # history is never rewritten
    with pytest.raises(ProfileError, match="no profile v0009"):
        store.rollback(9, "ana")


def test_versions_are_parsed_in_every_usual_spelling():
    assert parse_version(3) == parse_version("3") == parse_version("v0003") == 3
    assert version_label(12) == "v0012"
    for bad in ("three", "v-1", 0, True):
        with pytest.raises(ProfileError):
            parse_version(bad)


def test_concurrent_saves_get_distinct_versions(tmp_path):
    store = ProfileStore(tmp_path)
    errors = []

    def save(index: int) -> None:
        try:
            ProfileStore(tmp_path).save_new_version(StationProfile(station_id=f"s{index}"),
                                                    f"writer {index}")
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [v.version for v in store.versions()] == [1, 2, 3, 4, 5, 6]
    assert sorted(store.get(v).station_id for v in range(1, 7)) == [f"s{i}" for i in range(6)]


def test_an_invalid_profile_is_never_written(tmp_path):
    store = ProfileStore(tmp_path)
    store.save_new_version(full_profile(), "ana")
    with pytest.raises(ValueError, match="ok_below"):
        ThresholdsProfile(0.9, 0.1)
    with pytest.raises(ProfileError, match="author"):
        store.save_new_version(full_profile(), "  ")
    assert [v.version for v in store.versions()] == [1]


def test_a_save_interrupted_before_the_pointer_still_opens_the_latest(tmp_path):
    store = ProfileStore(tmp_path)
    store.save_new_version(full_profile(), "ana")
    (tmp_path / "current").unlink()
    assert store.current_version() == 1
    (tmp_path / "current").write_text("v0007\n")
    with pytest.raises(ProfileError, match="current: names v0007, but v0007.yaml does not"):
        store.current()
    (tmp_path / "current").write_text("garbage\n")
    with pytest.raises(ProfileError, match="expected a version"):
        store.current()


@pytest.mark.parametrize("pointer", ["v0007\n", "garbage\n"])
def test_a_rollback_repairs_a_damaged_pointer(tmp_path, pointer):
    store = ProfileStore(tmp_path)
    store.save_new_version(full_profile(), "ana")
    store.save_new_version(full_profile().replace(thresholds=ThresholdsProfile(0.2, 0.4)), "ben")
    (tmp_path / "current").write_text(pointer)
    with pytest.raises(ProfileError, match="station-app profile rollback VERSION"):
        store.current()
    saved = store.rollback(1, "me")
    assert saved.version == 3 and saved.based_on == 1
    assert saved.note == "rollback to v0001; repaired the current pointer"
    assert store.current().thresholds == full_profile().thresholds
    # A save without a known base records none rather than a made-up one.
    (tmp_path / "current").write_text(pointer)
    assert store.save_new_version(full_profile(), "cara").based_on is None


def test_a_save_expecting_another_current_version_is_refused(tmp_path):
    store = ProfileStore(tmp_path)
    with pytest.raises(ProfileConflict, match="v0001 is current, but this profile was built "
                                              "on no version") as raised:
        store.save_new_version(full_profile(), "ana")
        store.save_new_version(full_profile(), "ben", expected_current=None)
    assert raised.value.current == 1 and store.latest_version() == 1
    assert store.save_new_version(full_profile(), "ben", expected_current=1).version == 2


PROBLEMS = [
    ("camera:\n  exposure_us: fast\n", "v0001.yaml:4: camera.exposure_us: expected a number"),
    ("camera:\n  exposure_us: 100\n  shutter: 3\n", "v0001.yaml:5: camera.shutter: unknown "
                                                    "key; allowed: exposure_us"),
    ("camera:\n  gain_db: 1\n", "v0001.yaml:3: camera.exposure_us: is missing"),
    ("camera:\n  exposure_us: -5\n", "v0001.yaml:4: camera.exposure_us: must be above 0"),
    ("tray:\n  corners: [[0, 0], [10, 0], [0, 10], [10, 10]]\n  frame_size: [20, 20]\n",
     "v0001.yaml:4: tray.corners: tray corners must form a convex quadrilateral"),
    ("tray:\n  corners: [[0, 0], [10, 0]]\n  frame_size: [20, 20]\n",
     "v0001.yaml:4: tray.corners: tray corners must be four finite"),
    ("tray:\n  corners: [[0, 0], [10, 0], [10, 10], [0, 10]]\n  frame_size: [20, 20]\n"
     "  homography: [[1, 0, 0], [0, 1, 0], [0, 0, 1]]\n",
     "v0001.yaml:6: tray.homography: does not match the corners"),
    ("thresholds:\n  ok_below: 0.8\n  damaged_above: 0.2\n",
     "v0001.yaml:4: thresholds.ok_below: (0.8) must not be above damaged_above"),
    ("photometry:\n  flat_field:\n    degree: 2\n    coefficients: [1, 0]\n"
     "    frame_size: [40, 30]\n",
     "v0001.yaml:4: photometry.flat_field: flat field of degree 2 needs 6 coefficients"),
    ("steps:\n- id: tray\n  status: accepted\n", "v0001.yaml:3: steps[0].reason: a step "
                                                  "accepted without passing needs"),
    ("lighting: 80\n", "v0001.yaml:3: lighting: expected a mapping"),
    ("camera: {exposure_us: 1, exposure_us: 2}\n", "v0001.yaml:3: not a valid profile YAML: "
                                                   "duplicate key"),
]


@pytest.mark.parametrize("body, message", PROBLEMS)
def test_loading_names_the_file_line_and_field(tmp_path, body, message):
    path = tmp_path / "v0001.yaml"
    path.write_text("format: 1\nversion: 1\n" + body)
    with pytest.raises(ProfileError) as caught:
        ProfileStore(tmp_path).get(1)
    assert str(caught.value).startswith(str(tmp_path / message.split(":")[0])), caught.value
    assert message.split(":", 1)[1] in str(caught.value)


def test_store_checks_version_number_and_settings_file(tmp_path):
    store = ProfileStore(tmp_path)
    (tmp_path / "v0002.yaml").write_text("format: 1\nversion: 5\n")
    with pytest.raises(ProfileError, match="version: says 5 but the file name says 2"):
        store.get(2)
    (tmp_path / "v0003.yaml").write_text("format: 1\nversion: 3\ncamera:\n  exposure_us: 100\n"
                                         "  settings_file: v0003.pfs\n")
    with pytest.raises(ProfileError, match="v0003.pfs is missing beside the profile"):
        store.get(3)
    (tmp_path / "v0004.yaml").write_text("format: 2\nversion: 4\n")
    with pytest.raises(ProfileError, match="reads profile format 1, the file is format 2"):
        store.get(4)
    listed = {v.version: v.problem for v in store.versions()}
    assert set(listed) == {2, 3, 4} and all(listed.values())  # listed, with their problem


def test_load_profile_reports_unreadable_and_non_mapping_files(tmp_path):
    with pytest.raises(ProfileError, match="cannot be read"):
        load_profile(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ProfileError, match="must be a mapping of sections"):
        load_profile(tmp_path / "list.yaml")


def test_update_current_replaces_sections_of_the_current_profile(tmp_path):
    store = ProfileStore(tmp_path)
    store.update_current("ana", "thresholds first", thresholds=ThresholdsProfile(0.3, 0.6))
    assert store.current().camera is None and store.current().thresholds.ok_below == 0.3
    store.save_new_version(full_profile(), "ana", "full")
    store.update_current("ben", "new thresholds", thresholds=ThresholdsProfile(0.1, 0.9))
    current = store.current()
    assert current.version == 3 and current.thresholds.as_tuple() == (0.1, 0.9)
    assert current.tray == full_profile().tray and current.based_on == 2
