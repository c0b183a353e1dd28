"""The paper's ranking metrics in plain numpy, for validation during training.

(``training`` may import only ``engines``, so it cannot use ``calibration.metrics``; the
tests compare these with scikit-learn.)
"""

from __future__ import annotations

import numpy as np


def _sorted_counts(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives above each distinct score threshold, highest first."""
    order = np.argsort(-scores, kind="mergesort")
    labels, scores = labels[order], scores[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_positives = np.cumsum(labels)[last_of_tie]
    false_positives = (last_of_tie + 1) - true_positives
    return true_positives, false_positives


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall curve, step-wise (as scikit-learn computes it)."""
    labels = np.asarray(labels, bool).astype(np.float64)
    scores = np.asarray(scores, np.float64)
    positives = labels.sum()
    if positives == 0:
        return float("nan")
    tp, fp = _sorted_counts(labels, scores)
    precision = tp / (tp + fp)
    recall = tp / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def recall_at_fpr(labels: np.ndarray, scores: np.ndarray, max_fpr: float = 0.01) -> float:
    """Highest recall whose false-positive rate is at most ``max_fpr``."""
    labels = np.asarray(labels, bool).astype(np.float64)
    scores = np.asarray(scores, np.float64)
    positives, negatives = labels.sum(), (1 - labels).sum()
    if positives == 0 or negatives == 0:
        return float("nan")
    tp, fp = _sorted_counts(labels, scores)
    allowed = fp / negatives <= max_fpr
    return float((tp[allowed] / positives).max()) if allowed.any() else 0.0


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    labels = np.asarray(labels, bool)
    scores = np.asarray(scores, np.float64)
    positives, negatives = scores[labels], scores[~labels]
    if len(positives) == 0 or len(negatives) == 0:
        return float("nan")
    ranks = np.empty(len(scores))
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average_rank = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average_rank, counts)
    rank_sum = ranks[labels].sum()
    pairs = len(positives) * len(negatives)
    return float((rank_sum - len(positives) * (len(positives) + 1) / 2) / pairs)


def scorer_metrics(defect: np.ndarray, major: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AP_any, AP_major (non-defective + major only), AUROC and R@1%FPR on one split."""
    defect, major = np.asarray(defect, bool), np.asarray(major, bool)
    scores = np.asarray(scores, np.float64)
    major_subset = ~defect | major
    return {"ap_any": average_precision(defect, scores),
            "ap_major": average_precision(major[major_subset], scores[major_subset]),
            "auroc": auroc(defect, scores),
            "recall_at_1pct_fpr": recall_at_fpr(defect, scores, 0.01)}
