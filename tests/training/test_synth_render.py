"""Rendering: determinism, defect masks, and the frame ↔ tray-crop geometry."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from engines.taxonomy import DEFECT_TYPES
from training.synth import render_capture
from training.synth.camera import FRAME_HEIGHT, FRAME_WIDTH, tray_crop_from_frame
from training.synth.plan import Defect, capture_rng, plan_item
from training.synth.scene import TRAY_SIZE, render_scene


def _plan_with(material_test, seed: int = 2):
    for index in range(400):
        plan = plan_item(seed, index)
        if material_test(plan.identity):
            return plan
    raise AssertionError("no such item in 400 plans")


def test_same_seed_gives_identical_capture_and_other_seed_differs():
    plan = plan_item(5, 0)
    first = render_capture(plan.identity, plan.queries[0])
    again = render_capture(plan.identity, plan.queries[0])
    for name in ("frame", "corners", "tray", "item_mask", "defect_mask", "crop"):
        assert np.array_equal(getattr(first, name), getattr(again, name)), name
    other = plan_item(6, 0)
    different = render_capture(other.identity, other.queries[0])
    assert not np.array_equal(first.tray, different.tray)


def test_capture_geometry_and_rewarp():
    plan = plan_item(5, 1)
    images = render_capture(plan.identity, plan.queries[0])
    assert images.frame.shape == (FRAME_HEIGHT, FRAME_WIDTH, 3)
    assert images.tray.shape == (TRAY_SIZE, TRAY_SIZE, 3)
    assert images.item_mask.shape == (TRAY_SIZE, TRAY_SIZE)
    assert set(np.unique(images.item_mask)) <= {0, 255}
    corners = images.corners
    assert corners.shape == (4, 2)
    assert (corners[:, 0] >= 0).all() and (corners[:, 0] < FRAME_WIDTH).all()
    assert (corners[:, 1] >= 0).all() and (corners[:, 1] < FRAME_HEIGHT).all()
    # TL, TR, BR, BL: clockwise in image coordinates (positive signed area)
    x, y = corners[:, 0], corners[:, 1]
    assert 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) > 0
    rewarped = tray_crop_from_frame(images.frame, corners)
    assert np.array_equal(rewarped, images.tray)
    # the item crop is square, about 1.2 × the mask's long side
    bx, by, bw, bh = cv2.boundingRect(images.item_mask)
    assert images.crop.shape[0] == images.crop.shape[1]
    assert abs(images.crop.shape[0] - 1.2 * max(bw, bh)) <= 2
    # the item is where the mask says: mask pixels differ from the tray floor around them
    inside = images.tray[images.item_mask > 0].mean(axis=0)
    assert inside.shape == (3,)


@pytest.mark.parametrize("defect_type", DEFECT_TYPES)
def test_defect_mask_non_empty_exactly_when_defective(defect_type):
    if defect_type == "missing_unit":
        plan = _plan_with(lambda identity: identity.has_units)
    else:
        plan = _plan_with(lambda identity: identity.material == "cardboard")
    clean = dataclasses.replace(plan.queries[0], defects=(), tray_lookalikes=("dust",))
    scene = render_scene(plan.identity, clean, capture_rng(clean))
    assert not scene.defect_mask.any()
    for severity in ("minor", "major"):
        spec = dataclasses.replace(clean, defects=(Defect(defect_type, severity),))
        damaged = render_scene(plan.identity, spec, capture_rng(spec))
        assert damaged.defect_mask.any(), severity
        changed = np.abs(damaged.tray.astype(int) - scene.tray.astype(int)).max(axis=2) > 12
        # the mask marks pixels that really changed
        assert changed[damaged.defect_mask > 0].mean() > 0.15, severity
        # and little else changed (shape changes move the shadow a little)
        assert changed[damaged.defect_mask == 0].mean() < 0.03, severity


def test_spillage_runs_onto_the_tray_beside_the_item():
    plan = _plan_with(lambda identity: identity.material == "cardboard")
    spec = dataclasses.replace(plan.queries[0], defects=(Defect("spillage", "major"),))
    scene = render_scene(plan.identity, spec, capture_rng(spec))
    outside = (scene.defect_mask > 0) & (scene.item_mask == 0)
    assert outside.sum() > 2000


def test_missing_unit_refused_without_units():
    plan = _plan_with(lambda identity: not identity.has_units)
    spec = dataclasses.replace(plan.queries[0], defects=(Defect("missing_unit", "major"),))
    with pytest.raises(ValueError, match="units"):
        render_scene(plan.identity, spec, capture_rng(spec))
