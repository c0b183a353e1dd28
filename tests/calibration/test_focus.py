"""Focus: the sharpness measure ranks known blur and ignores brightness; the tracker."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.focus import FocusError, FocusTracker, sharpness
from tests.calibration.synthetic import TRAY_CORNERS, tray_frame

BLURS = (0.0, 0.6, 1.2, 2.5)


@pytest.fixture(scope="module")
def frames():
    return {sigma: tray_frame(blur_sigma=sigma) for sigma in BLURS}


@pytest.mark.parametrize("method", ["laplacian", "tenengrad"])
def test_sharpness_falls_with_known_defocus(frames, method):
    values = [sharpness(frames[sigma], TRAY_CORNERS, method) for sigma in BLURS]
    assert all(a > 1.25 * b for a, b in zip(values, values[1:])), values


@pytest.mark.parametrize("sigma", [0.0, 1.2])
def test_sharpness_does_not_follow_the_light(sigma):
    bright = sharpness(tray_frame(blur_sigma=sigma, exposure=1.0), TRAY_CORNERS)
    dim = sharpness(tray_frame(blur_sigma=sigma, exposure=0.55), TRAY_CORNERS)
    assert dim == pytest.approx(bright, rel=0.1)


def test_region_forms_and_refusals(frames):
    sharp = frames[0.0]
    rect = sharpness(sharp, (300, 200, 300, 250))
    quad = sharpness(sharp, [[300, 200], [600, 200], [600, 450], [300, 450]])
    assert rect == pytest.approx(quad, rel=0.02)
    with pytest.raises(FocusError, match="too dark"):
        sharpness(np.zeros_like(sharp), TRAY_CORNERS)
    with pytest.raises(FocusError, match="outside the frame"):
        sharpness(sharp, (5000, 5000, 100, 100))
    with pytest.raises(ValueError, match="unknown sharpness method"):
        sharpness(sharp, None, "fft")


def test_tracker_keeps_the_best_and_passes_near_it(frames):
    tracker = FocusTracker(pass_fraction=0.9, min_readings=3)
    # The technician turns the ring from blurred through sharp and a little past it.
    sweep = [2.5, 1.2, 0.0, 0.6, 0.0]
    readings = [tracker.update(sharpness(frames[s], TRAY_CORNERS)) for s in sweep]
    assert [r.passed for r in readings] == [False, False, True, False, True]
    assert readings[3].relative < 0.9 and readings[-1].relative == pytest.approx(1.0)
    assert tracker.best == readings[2].value
    tracker.reset()
    assert tracker.best == 0 and tracker.update(1.0).passed is False  # too few readings
    with pytest.raises(ValueError):
        tracker.update(float("nan"))


def test_an_untouched_ring_never_passes(frames):
    """Identical frames (nobody turned the ring) must not pass, however many there are:
    the first frame would otherwise be its own best."""
    tracker = FocusTracker(pass_fraction=0.9, min_readings=3)
    value = sharpness(frames[0.0], TRAY_CORNERS)
    readings = [tracker.update(value) for _ in range(10)]
    assert not any(r.passed for r in readings) and not tracker.turned
    # Small jitter (sensor noise, a breath on the ring) is not a turn either.
    tracker.reset()
    assert not any(tracker.update(value * f).passed for f in (1.0, 0.95, 1.02, 0.9, 1.0))
    # Turning away from the sharp point and back is.
    tracker.reset()
    sweep = [0.0, 0.6, 1.2, 0.6, 0.0]
    passed = [tracker.update(sharpness(frames[s], TRAY_CORNERS)).passed for s in sweep]
    assert passed == [False, False, False, False, True]
    assert "80% of the best or below" in tracker.criterion()
    with pytest.raises(ValueError, match="dip_fraction"):
        FocusTracker(pass_fraction=0.9, dip_fraction=0.95)
