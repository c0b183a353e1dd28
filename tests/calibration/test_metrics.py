"""Ranking metrics: hand-worked cases, agreement with scikit-learn, and clear errors."""

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.metrics import precision_recall_curve as sk_precision_recall_curve
from sklearn.metrics import roc_curve as sk_roc_curve

from calibration.metrics import (TABLE_COLUMNS, BenchmarkMetrics, MetricError,
                                 average_precision, auroc, benchmark_metrics, breakdown,
                                 precision_recall_curve, recall_at_fpr, recall_at_precision,
                                 roc_curve)

# Ranked by score: 0.9 P, 0.8 N, 0.7 P, 0.6 N, 0.5 P   (3 positives, 2 negatives)
LABELS = [1, 0, 1, 0, 1]
SCORES = [0.9, 0.8, 0.7, 0.6, 0.5]


def test_average_precision_hand_worked():
    # Recall steps at the positives: 1/3 at P=1/1, 1/3 at P=2/3, 1/3 at P=3/5.
    expected = (1 / 3) * (1 + 2 / 3 + 3 / 5)
    assert average_precision(LABELS, SCORES) == pytest.approx(expected)


def test_average_precision_with_a_tie_takes_one_step():
    # Scores 0.9 P | 0.5 P, 0.5 N tied | 0.1 N.  Thresholds: 0.9 -> P=1, R=1/2;
    # 0.5 -> TP=2, FP=1, P=2/3, R=1.  AP = 1/2*1 + 1/2*2/3 = 5/6 (not 1, ties not split).
    assert average_precision([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1]) == pytest.approx(5 / 6)


def test_auroc_hand_worked_and_ties_count_half():
    # Pairs (positive, negative) with the positive higher: (0.9,0.8) (0.9,0.6) (0.7,0.6):
    # 3 of 6 pairs -> 0.5.
    assert auroc(LABELS, SCORES) == pytest.approx(3 / 6)
    # One positive and one negative tied at 0.5 plus a clear pair: pairs (0.9,0.5)=1,
    # (0.9,0.1)=1, (0.5,0.5)=1/2, (0.5,0.1)=1 -> 3.5/4.
    assert auroc([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1]) == pytest.approx(3.5 / 4)


def test_recall_at_precision_hand_worked():
    # Precision at each threshold: 1/1, 1/2, 2/3, 2/4, 3/5; recall 1/3, 1/3, 2/3, 2/3, 1.
    assert recall_at_precision(LABELS, SCORES, 0.6) == pytest.approx(1.0)   # 3/5 >= 0.6
    assert recall_at_precision(LABELS, SCORES, 0.65) == pytest.approx(2 / 3)  # 2/3
    assert recall_at_precision(LABELS, SCORES, 0.7) == pytest.approx(1 / 3)   # only 1/1


def test_recall_at_precision_is_zero_when_unreachable():
    # Top score is a negative: precision never exceeds 1/2 ... here it stays at 1/3.
    assert recall_at_precision([0, 0, 1], [0.9, 0.8, 0.1], 0.5) == 0.0


def test_recall_at_fpr_hand_worked_and_never_splits_a_tie():
    # FPR at thresholds 0.9: 0, 0.8: 1/2, ... -> with max_fpr 0 only recall 1/3.
    assert recall_at_fpr(LABELS, SCORES, 0.0) == pytest.approx(1 / 3)
    assert recall_at_fpr(LABELS, SCORES, 0.5) == pytest.approx(2 / 3)
    # Positive tied with the only negative at the top: flagging the tie gives FPR 1/1.
    assert recall_at_fpr([1, 0, 1], [0.9, 0.9, 0.2], 0.5) == 0.0


def random_case(rng, size, positive_rate=0.3, levels=7):
    labels = rng.random(size) < positive_rate
    labels[:2] = [True, False]
    # Rounded after the class shift, so positives and negatives tie often.
    scores = np.round((rng.random(size) + 0.3 * labels) * levels) / levels
    return labels, scores


@pytest.mark.parametrize("seed", range(20))
def test_ap_and_auroc_agree_with_sklearn_on_tied_random_data(seed):
    rng = np.random.default_rng(seed)
    labels, scores = random_case(rng, int(rng.integers(5, 400)))
    assert average_precision(labels, scores) == pytest.approx(
        average_precision_score(labels, scores), abs=1e-12)
    assert auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_recall_targets_agree_with_sklearn_curves(seed):
    rng = np.random.default_rng(100 + seed)
    labels, scores = random_case(rng, 300)
    precision, recall, _ = sk_precision_recall_curve(labels, scores)
    for target in (0.3, 0.5, 0.8):
        assert recall_at_precision(labels, scores, target) == pytest.approx(
            recall[precision >= target].max())
    fpr, tpr, _ = sk_roc_curve(labels, scores, drop_intermediate=False)
    for target in (0.0, 0.01, 0.1):
        assert recall_at_fpr(labels, scores, target) == pytest.approx(tpr[fpr <= target].max())


def test_curves_match_sklearn_points():
    rng = np.random.default_rng(7)
    labels, scores = random_case(rng, 200)
    curve = precision_recall_curve(labels, scores)
    sk_precision, sk_recall, sk_thresholds = sk_precision_recall_curve(labels, scores)
    ours = {t: (p, r) for p, r, t in zip(curve.precision, curve.recall, curve.thresholds)}
    for p, r, t in zip(sk_precision[:-1], sk_recall[:-1], sk_thresholds):
        assert ours[t] == pytest.approx((p, r))
    roc = roc_curve(labels, scores)
    sk_fpr, sk_tpr, _ = sk_roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(roc.fpr, sk_fpr)
    np.testing.assert_allclose(roc.tpr, sk_tpr)
    assert np.all(np.diff(roc.thresholds) < 0)


@pytest.mark.parametrize("labels, scores, message", [
    ([0, 0, 0], [0.1, 0.2, 0.3], "no positives"),
    ([1, 1], [0.1, 0.2], "no negatives"),
    ([], [], "empty"),
    ([1, 0], [0.1, math.nan], "NaN"),
    ([1, 0, 1], [0.1, 0.2], "differ in length"),
    ([2, 0], [0.1, 0.2], "booleans or 0/1"),
])
@pytest.mark.parametrize("metric", [average_precision, auroc, recall_at_precision,
                                    recall_at_fpr])
def test_degenerate_input_raises_a_clear_metric_error(metric, labels, scores, message):
    with pytest.raises(MetricError, match=message):
        metric(labels, scores)


def test_metric_error_is_a_value_error():
    assert issubclass(MetricError, ValueError)


def test_benchmark_metrics_in_percent_with_ap_major_on_the_major_subset():
    defect = [1, 1, 1, 0, 0, 0]
    major = [1, 0, 0, 0, 0, 0]
    scores = [0.9, 0.3, 0.8, 0.7, 0.2, 0.1]
    result = benchmark_metrics(defect, major, scores)
    assert result.count == 6 and result.positives == 3 and result.majors == 1
    assert result.ap_any == pytest.approx(100 * average_precision(defect, scores))
    # AP_major drops the minor defects (0.3, 0.8): the major at 0.9 ranks first -> 100.
    assert result.ap_major == pytest.approx(100.0)
    assert result.auroc == pytest.approx(100 * auroc(defect, scores))
    assert len(result.as_row()) == len(TABLE_COLUMNS)
    assert result.as_row()[1] == "100.00"


def test_benchmark_metrics_notes_missing_majors_instead_of_a_number():
    result = benchmark_metrics([1, 0, 1, 0], [0, 0, 0, 0], [0.9, 0.1, 0.5, 0.4])
    assert math.isnan(result.ap_major)
    assert result.as_row()[1] == "n/a"
    assert any("no major" in note for note in result.notes)


def test_benchmark_metrics_rejects_major_without_defect():
    with pytest.raises(MetricError, match="major but not defective"):
        benchmark_metrics([0, 1], [1, 1], [0.2, 0.3])


def test_as_row_formats_like_table_2():
    metrics = BenchmarkMetrics(90.671, 91.449, 94.27, 97.69, 59.36, 100, 30)
    assert metrics.as_row() == ("90.67", "91.45", "94.27", "97.69", "59.36")


def test_breakdown_pairs_group_positives_with_all_negatives():
    rng = np.random.default_rng(3)
    size = 400
    defect = rng.random(size) < 0.4
    major = defect & (rng.random(size) < 0.5)
    penetration = defect & (rng.random(size) < 0.5)
    scores = rng.random(size) + 0.6 * penetration  # penetrations are easy to see
    rare = np.zeros(size, bool)
    rare[np.flatnonzero(defect)[:2]] = True
    result = breakdown({"penetration": penetration, "other": defect & ~penetration,
                        "rare": rare}, defect, major, scores)
    subset = penetration | ~defect
    assert result["penetration"].metrics.ap_any == pytest.approx(
        100 * average_precision(defect[subset], scores[subset]))
    assert result["penetration"].negatives == int((~defect).sum())
    assert result["penetration"].metrics.ap_any > result["other"].metrics.ap_any
    assert result["rare"].metrics is None and "too few" in result["rare"].note


def test_breakdown_within_group_and_lookalike_pairings():
    defect = np.array([1, 0, 1, 0, 1, 0, 1, 0] * 3, bool)
    major = np.zeros_like(defect)
    scores = np.linspace(0, 1, defect.size)
    group = np.arange(defect.size) < 12
    within = breakdown({"g": group}, defect, major, scores, pairing="within_group",
                       min_positives=1, min_negatives=1)["g"]
    assert within.count == 12
    assert within.metrics.auroc == pytest.approx(100 * auroc(defect[group], scores[group]))
    looks = breakdown({"g": group}, defect, major, scores,
                      pairing="negatives_vs_all_positives", min_positives=1,
                      min_negatives=1)["g"]
    assert looks.positives == int(defect.sum()) and looks.negatives == 6
