"""Threshold estimation and the IoU curve (writing them into the station profile is in
test_threshold_step.py: profiles are versioned, never edited in place)."""

import math

import numpy as np
import pytest

from calibration.metrics import MetricError
from calibration.thresholds import (pixel_threshold_max_iou, threshold_curves,
                                    threshold_for_fpr, threshold_for_precision,
                                    threshold_for_recall, threshold_max_f1,
                                    verdict_thresholds)

# 10 good items at 0.00 .. 0.45 (step 0.05), 5 defects at 0.40, 0.60, 0.70, 0.80, 0.90.
GOOD = [round(0.05 * i, 2) for i in range(10)]
BAD = [0.40, 0.60, 0.70, 0.80, 0.90]
LABELS = [0] * 10 + [1] * 5
SCORES = GOOD + BAD


def flagged(threshold):
    scores, labels = np.array(SCORES), np.array(LABELS, bool)
    return int((labels & (scores >= threshold)).sum()), int((~labels & (scores >= threshold)).sum())


def test_max_f1_picks_the_gap_above_the_good_items():
    # Flagging >= 0.6 gives TP 4, FP 0: F1 = 8/9.  Flagging >= 0.45 adds a FP (0.45):
    # TP 4, FP 1, F1 = 8/10.  >= 0.40 gives TP 5, FP 2 (0.40 good tied with 0.40 bad): 10/12.
    choice = threshold_max_f1(LABELS, SCORES)
    assert choice.f1 == pytest.approx(8 / 9)
    assert 0.45 < choice.threshold < 0.60  # halfway between adjacent distinct scores
    assert flagged(choice.threshold) == (4, 0)
    assert choice.precision == 1.0 and choice.recall == pytest.approx(0.8)


def test_fpr_target_takes_the_most_recall_without_splitting_the_tie():
    # FPR <= 0.1 allows one good item: >= 0.45 (FP 1, TP 4). Going to 0.40 takes the
    # tied good 0.40 too: FP 2 = 20 % > 10 %, so the defect at 0.40 is not caught.
    choice = threshold_for_fpr(LABELS, SCORES, 0.1)
    assert flagged(choice.threshold) == (4, 1)
    assert choice.fpr == pytest.approx(0.1) and choice.recall == pytest.approx(0.8)
    strict = threshold_for_fpr(LABELS, SCORES, 0.0)
    assert flagged(strict.threshold) == (4, 0)


def test_precision_and_recall_targets():
    # Precision >= 0.7 at the lowest threshold: >= 0.40 has 5/7 = 0.714 -> recall 1.
    assert flagged(threshold_for_precision(LABELS, SCORES, 0.7).threshold) == (5, 2)
    # Precision >= 0.75: 0.40 fails (0.714), 0.45 gives 4/5 = 0.8.
    assert flagged(threshold_for_precision(LABELS, SCORES, 0.75).threshold) == (4, 1)
    # Recall >= 0.6 with fewest false positives: >= 0.7 (3 defects, no good item).
    choice = threshold_for_recall(LABELS, SCORES, 0.6)
    assert flagged(choice.threshold) == (3, 0) and choice.recall == pytest.approx(0.6)
    assert flagged(threshold_for_recall(LABELS, SCORES, 1.0).threshold) == (5, 2)


def test_unreachable_precision_flags_nothing_and_says_so():
    choice = threshold_for_precision([0, 1, 0], [0.9, 0.5, 0.1], 0.9)
    assert not choice.target_met and choice.recall == 0.0 and math.isnan(choice.precision)
    assert choice.threshold > 0.9 and "no threshold" in choice.description


def test_threshold_curves_line_up_with_the_choices():
    curves = threshold_curves(LABELS, SCORES)
    best = threshold_max_f1(LABELS, SCORES)
    row = int(np.argmax(curves.f1))
    assert curves.thresholds[row] == pytest.approx(best.threshold)
    assert np.all(np.diff(curves.thresholds) < 0)
    assert curves.recall[-1] == 1.0 and curves.fpr[-1] == 1.0


def test_verdict_thresholds_make_a_review_band():
    result = verdict_thresholds(LABELS, SCORES, ok_goal="fpr", ok_target=0.1,
                                damaged_min_precision=1.0)
    assert flagged(result.ok_below) == (4, 1)           # sidelines 1 of 10 good items
    assert flagged(result.damaged_above) == (4, 0)      # only certain defects are DAMAGED
    assert result.ok_below <= result.damaged_above
    provenance = result.provenance("synthetic-v1/validation", {"scorer": "1.2.0"}, "2025-01-01")
    assert provenance.expected_fpr == pytest.approx(0.1)
    assert provenance.expected_recall == pytest.approx(0.8)


def test_verdict_thresholds_without_a_review_band_say_so():
    result = verdict_thresholds(LABELS, SCORES, ok_goal="recall", ok_target=0.6,
                                damaged_min_precision=0.7)
    assert result.damaged_above == result.ok_below
    assert any("no REVIEW band" in note for note in result.notes)


def constructed_heatmaps():
    """Two 20x20 images with a 5x5 defect whose heat is 0.8 inside, 0.3 in a halo ring."""
    heatmaps, masks = [], []
    for offset in (3, 10):
        heat = np.full((20, 20), 0.1)
        heat[offset - 1:offset + 6, offset - 1:offset + 6] = 0.3   # halo, 7x7
        heat[offset:offset + 5, offset:offset + 5] = 0.8
        mask = np.zeros((20, 20), bool)
        mask[offset:offset + 5, offset:offset + 5] = True
        heatmaps.append(heat)
        masks.append(mask)
    heatmaps.append(np.random.default_rng(0).random((20, 20)))  # defect-free: not counted
    masks.append(np.zeros((20, 20), bool))
    return heatmaps, masks


def test_iou_curve_on_constructed_heatmaps():
    heatmaps, masks = constructed_heatmaps()
    result = pixel_threshold_max_iou(heatmaps, masks, candidates=[0.05, 0.2, 0.5, 0.9])
    # t=0.05: everything (400 px) -> 25/400; t=0.2: the halo 49 px -> 25/49;
    # t=0.5: exactly the mask -> 1; t=0.9: nothing -> 0.
    np.testing.assert_allclose(result.mean_ious, [25 / 400, 25 / 49, 1.0, 0.0])
    assert result.threshold == 0.5 and result.mean_iou == 1.0
    assert result.images_used == 2 and result.images_skipped == 1


def test_iou_curve_default_candidates_and_errors():
    heatmaps, masks = constructed_heatmaps()
    result = pixel_threshold_max_iou(heatmaps, masks, candidates=51)
    assert result.candidates.size == 51 and result.mean_iou == 1.0
    assert 0.3 < result.threshold <= 0.8
    with pytest.raises(MetricError, match="non-empty defect mask"):
        pixel_threshold_max_iou(heatmaps[2:], masks[2:])
    with pytest.raises(MetricError, match="shape"):
        pixel_threshold_max_iou([np.zeros((4, 4))], [np.ones((5, 5))])
