"""Automatic tray detection on synthetic camera frames with known tray corners."""

from __future__ import annotations

import numpy as np
import pytest

from engines.tray_alignment import measure_alignment
from engines.tray_detection import TrayNotFound, detect_tray, order_corners
from engines.tray_geometry import TrayGeometry, mean_corner_error
from training.synth import render_capture
from training.synth.plan import plan_item

MAX_MEAN_CORNER_ERROR_PX = 4.0  # at 2048 scale, the bound


@pytest.fixture(scope="module")
def synthetic_captures():
    """Eight frames of four items: varied trays, enclosures, poses and lighting."""
    captures = []
    for index in range(4):
        plan = plan_item(seed=11, index=index)
        for spec in plan.captures[:2]:
            captures.append(render_capture(plan.identity, spec))
    return captures


def test_detected_corners_are_within_the_bound(synthetic_captures):
    errors = []
    for capture in synthetic_captures:
        truth = TrayGeometry.from_array(capture.corners)
        errors.append(mean_corner_error(detect_tray(capture.frame), truth))
    assert np.mean(errors) <= MAX_MEAN_CORNER_ERROR_PX, errors
    assert max(errors) <= 2 * MAX_MEAN_CORNER_ERROR_PX, errors


def test_calibrated_geometry_passes_the_per_frame_check(synthetic_captures):
    for capture in synthetic_captures:
        alignment = measure_alignment(capture.frame, TrayGeometry.from_array(capture.corners))
        assert alignment.aligned, alignment.describe()


def test_a_frame_without_a_tray_is_refused():
    flat = np.full((3000, 4096, 3), 90, np.uint8)
    with pytest.raises(TrayNotFound, match="no tray outline"):
        detect_tray(flat)


def test_corner_order_is_clockwise_from_top_left():
    shuffled = np.array([[3400, 2850], [650, 180], [700, 2800], [3450, 230]], float)
    np.testing.assert_array_equal(order_corners(shuffled),
                                  [[650, 180], [3450, 230], [3400, 2850], [700, 2800]])
