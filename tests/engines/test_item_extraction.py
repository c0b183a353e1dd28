"""Frame → tray image → item mask → crop with the bundled segmenter, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest

from engines import quality_gates as gates
from engines.item_extraction import TRAY_MOVED, ItemExtractor
from engines.runtime import load_model
from engines.segmentation import ItemSegmenter, mask_iou
from engines.tray_geometry import TrayGeometry
from station_app.models import BUNDLED_MODELS
from training.synth import render_capture
from training.synth.plan import plan_item


@pytest.fixture(scope="module")
def segmenter():
    with load_model(BUNDLED_MODELS / "segmenter.onnx", runtime="onnxruntime",
                    threads=2) as session:
        yield ItemSegmenter(session)


@pytest.fixture(scope="module")
def capture():
    plan = plan_item(seed=41, index=0)
    return render_capture(plan.identity, plan.queries[0])


def test_a_frame_becomes_a_tray_image_mask_and_crop(segmenter, capture):
    extractor = ItemExtractor(TrayGeometry.from_array(capture.corners), segmenter)
    result = extractor.from_frame(capture.frame)
    assert result.accepted, result.issues
    assert result.tray_image.shape == (2048, 2048, 3)
    assert mask_iou(result.mask, capture.item_mask) > 0.9
    side = result.crop_box.side
    assert result.crop.shape == (side, side, 3)
    assert {"tray_check", "tray_warp", "exposure_check", "segmentation", "crop"} \
        <= set(result.timings_ms)


def test_a_moved_tray_is_refused_before_any_work(segmenter, capture):
    moved = TrayGeometry.from_array(np.asarray(capture.corners) + [40.0, 25.0])
    result = ItemExtractor(moved, segmenter).from_frame(capture.frame)
    assert [issue.code for issue in result.issues] == [TRAY_MOVED]
    assert "recalibrate" in result.issues[0].message
    assert result.mask is None and "segmentation" not in result.timings_ms


def test_an_empty_tray_is_refused(segmenter, capture):
    empty = np.empty_like(capture.tray)
    empty[:] = np.median(capture.tray.reshape(-1, 3), axis=0).astype(np.uint8)
    result = ItemExtractor(TrayGeometry.from_array(capture.corners), segmenter) \
        .from_tray_image(empty)
    assert [issue.code for issue in result.issues] == [gates.NO_ITEM]


def test_a_dark_frame_is_refused_for_exposure(segmenter, capture):
    result = ItemExtractor(TrayGeometry.from_array(capture.corners), segmenter) \
        .from_tray_image(capture.tray // 10)
    assert gates.UNDER_EXPOSED in [issue.code for issue in result.issues]
    assert result.mask is None


def test_segmenter_warm_up_runs_the_shape_every_frame_uses(segmenter, capture, monkeypatch):
    from engines.runtime.base import WARM_UP_RUNS
    fed = []
    run = segmenter.session.run
    monkeypatch.setattr(segmenter.session, "run", lambda feeds: fed.append(
        next(iter(feeds.values())).shape) or run(feeds))
    segmenter.warm_up()
    warmed = list(fed)
    fed.clear()
    ItemExtractor(TrayGeometry.from_array(capture.corners), segmenter).from_frame(capture.frame)
    assert warmed == fed * WARM_UP_RUNS and len(fed) == 1
