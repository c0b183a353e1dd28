"""Tray geometry step: detected and dragged corners, re-projection error, pixel size."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.tray_calibration import (TrayNotFound, calibrate_tray, pixel_size_mm,
                                          reprojection_error)
from engines.tray_geometry import TrayGeometry
from tests.calibration.synthetic import TRAY_CORNERS, tray_frame


@pytest.fixture(scope="module")
def frame():
    return tray_frame(noise=1.5)


def test_detected_corners_match_the_known_ones_and_pass(frame):
    calibration = calibrate_tray(frame, tray_size_mm=(600, 400))
    assert calibration.passed, calibration.failures
    assert calibration.corners_source == "automatic"
    assert np.abs(calibration.geometry.corner_array - TRAY_CORNERS).max() < 0.5
    assert calibration.reprojection.rms_px < 0.3
    assert calibration.reprojection.found_fraction > 0.95
    profile = calibration.to_profile()
    assert profile.frame_size == (960, 720) and profile.corners_source == "automatic"
    np.testing.assert_allclose(profile.homography, calibration.geometry.homography)


def test_a_corner_dragged_off_the_rim_fails_and_a_small_nudge_passes(frame):
    dragged = TRAY_CORNERS.copy()
    dragged[1] += (6.0, 4.0)
    off = calibrate_tray(frame, dragged)
    assert not off.passed and off.corners_source == "adjusted"
    assert off.reprojection.rms_px > 1.5
    assert any("re-projection error" in failure for failure in off.failures)
    nudged = TRAY_CORNERS.copy()
    nudged[1] += (0.4, -0.3)
    assert calibrate_tray(frame, nudged[[2, 0, 3, 1]]).passed   # any order is accepted


def test_reprojection_error_in_tray_pixels_follows_the_frame_error(frame):
    shifted = TrayGeometry.from_array(TRAY_CORNERS + (3.0, 0.0))
    result = reprojection_error(frame, shifted)
    # The outline moved right: the rim lies 3 px outside it on the left, inside on the right
    # (offsets are signed along the outward normal); top and bottom stay on the rim.
    assert result.side_median_px["left"] == pytest.approx(3, abs=0.3)
    assert result.side_median_px["right"] == pytest.approx(-3, abs=0.3)
    assert abs(result.side_median_px["top"]) < 0.3 and abs(result.side_median_px["bottom"]) < 0.3
    ratio = shifted.pixel_size_ratio()
    assert result.rms_tray_px == pytest.approx(result.rms_px / ratio, rel=0.25)


def test_pixel_size_from_the_known_tray_size():
    geometry = TrayGeometry.from_array([[100, 100], [700, 100], [700, 500], [100, 500]])
    per_frame, per_tray = pixel_size_mm(geometry, (600, 400))
    assert per_frame == pytest.approx(1.0)
    assert per_tray == (600 / 2048, 400 / 2048)
    with pytest.raises(ValueError):
        pixel_size_mm(geometry, (0, 400))


def test_no_tray_and_bad_corners(frame):
    with pytest.raises(TrayNotFound):
        calibrate_tray(np.full_like(frame, 90))
    with pytest.raises(ValueError, match="convex"):
        calibrate_tray(frame, [[0, 0], [10, 0], [10, 10], [5, 5]])


def test_a_realistic_12mp_frame_passes_with_detected_corners():
    """The synthetic data set's renderer: lit lip, shadow, vignetting, an item in the tray."""
    from training.synth import render_capture
    from training.synth.plan import plan_item

    plan = plan_item(seed=11, index=1)
    capture = render_capture(plan.identity, plan.captures[0])
    calibration = calibrate_tray(capture.frame, tray_size_mm=(600, 600))
    assert calibration.passed, calibration.failures
    assert np.abs(calibration.geometry.corner_array - capture.corners).max() < 1.0
    truth = calibrate_tray(capture.frame, capture.corners)
    assert truth.passed and truth.reprojection.rms_px < 0.5
