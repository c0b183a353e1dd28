"""Bootstrap confidence intervals for the benchmark metrics, and paired run comparisons.

A test set of a few thousand captures with a few hundred defects gives metrics that move
by whole percentage points between samples; these intervals say how much. Resampling is
stratified by class (and by severity for the benchmark set), so every resample has the
same number of positives and negatives as the data and no metric becomes undefined.
Intervals are percentile intervals; results are reproducible per ``seed``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np

from calibration.metrics import (ArrayLike, MetricError, _as_labels, _as_scores,
                                 _defect_and_major, auroc, average_precision, recall_at_fpr,
                                 recall_at_precision, validate)


@dataclass(frozen=True)
class ConfidenceInterval:
    """A metric on the data and its bootstrap percentile interval.

    ``failed`` counts resamples where the metric was undefined; they are left out.
    """

    estimate: float
    low: float
    high: float
    level: float
    resamples: int
    failed: int = 0

    def __str__(self) -> str:
        return f"{self.estimate:.2f} [{self.low:.2f}, {self.high:.2f}]"


@dataclass(frozen=True)
class PairedDifference:
    """Run B minus run A on the same captures, with a paired bootstrap interval.

    ``significant`` is True when the interval excludes 0.
    """

    estimate_a: float
    estimate_b: float
    difference: float
    low: float
    high: float
    level: float
    resamples: int
    failed: int = 0

    @property
    def significant(self) -> bool:
        return bool(np.isfinite(self.low) and (self.low > 0 or self.high < 0))


def _check_settings(n: int, level: float) -> None:
    if n < 1:
        raise MetricError(f"n (bootstrap resamples) must be at least 1, got {n}")
    if not 0 < level < 1:
        raise MetricError(f"level must be between 0 and 1, e.g. 0.95; got {level}")


def stratified_resamples(strata: np.ndarray, n: int, seed: int) -> Iterator[np.ndarray]:
    """``n`` index arrays; each draws with replacement within each stratum, same sizes."""
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(strata == value) for value in np.unique(strata)]
    for _ in range(n):
        yield np.concatenate([group[rng.integers(0, group.size, group.size)]
                              for group in members])


def _interval(values: np.ndarray, level: float) -> tuple[float, float, int]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, math.nan, int(values.size)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high), int(values.size - finite.size)


def _safe(metric_fn: Callable[..., float], *arguments: np.ndarray) -> float:
    try:
        return float(metric_fn(*arguments))
    except MetricError:
        return math.nan


def _columns(labels: np.ndarray, columns: Sequence[ArrayLike]) -> list[np.ndarray]:
    arrays = [np.asarray(column) for column in columns]
    for position, array in enumerate(arrays):
        if array.shape[:1] != labels.shape:
            raise MetricError(f"column {position + 1} has {array.shape[:1]} entries for "
                              f"{labels.size} labels")
    return arrays


def bootstrap_ci(metric_fn: Callable[..., float], labels: ArrayLike, *columns: ArrayLike,
                 n: int = 1000, seed: int = 0, level: float = 0.95) -> ConfidenceInterval:
    """Interval of ``metric_fn(labels, *columns)`` over class-stratified resamples.

    Example: ``bootstrap_ci(average_precision, defect, scores, seed=1)``. The estimate is
    the metric on the data itself; an undefined metric on the data raises MetricError.
    """
    _check_settings(n, level)
    label_array = _as_labels(labels)
    arrays = _columns(label_array, columns)
    estimate = float(metric_fn(label_array, *arrays))
    values = np.array([_safe(metric_fn, label_array[index], *(a[index] for a in arrays))
                       for index in stratified_resamples(label_array, n, seed)])
    low, high, failed = _interval(values, level)
    return ConfidenceInterval(estimate, low, high, level, n, failed)


def paired_difference_ci(metric_fn: Callable[..., float], labels: ArrayLike,
                         scores_a: ArrayLike, scores_b: ArrayLike, *columns: ArrayLike,
                         n: int = 1000, seed: int = 0,
                         level: float = 0.95) -> PairedDifference:
    """Paired bootstrap of ``metric(B) - metric(A)`` on the same captures.

    Both runs are scored on the same resample each time, so the capture-to-capture
    variation cancels and a real difference shows as an interval excluding 0. The metric
    is called as ``metric_fn(labels, *columns, scores)``: ``average_precision`` with no
    columns, or a ``(defect, major, scores)`` function with ``columns=(major,)``.
    """
    _check_settings(n, level)
    label_array = _as_labels(labels)
    score_a, score_b = _as_scores(scores_a, "scores_a"), _as_scores(scores_b, "scores_b")
    if not label_array.size == score_a.size == score_b.size:
        raise MetricError(f"labels, scores_a and scores_b differ in length: "
                          f"{label_array.size}, {score_a.size}, {score_b.size}")
    arrays = _columns(label_array, columns)
    estimate_a = float(metric_fn(label_array, *arrays, score_a))
    estimate_b = float(metric_fn(label_array, *arrays, score_b))
    differences = []
    for index in stratified_resamples(label_array, n, seed):
        resampled = [a[index] for a in arrays]
        differences.append(_safe(metric_fn, label_array[index], *resampled, score_b[index])
                           - _safe(metric_fn, label_array[index], *resampled, score_a[index]))
    low, high, failed = _interval(np.array(differences), level)
    return PairedDifference(estimate_a, estimate_b, estimate_b - estimate_a, low, high, level,
                            n, failed)


# ---------------------------------------------------------- all five Table 2 metrics

def _major_ap(defect: np.ndarray, major: np.ndarray, scores: np.ndarray) -> float:
    subset = ~defect | major
    return average_precision(major[subset], scores[subset])


# Field name of BenchmarkMetrics -> metric(defect, major, scores) as a fraction.
BENCHMARK_METRIC_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], float]] = {
    "ap_any": lambda defect, major, scores: average_precision(defect, scores),
    "ap_major": _major_ap,
    "auroc": lambda defect, major, scores: auroc(defect, scores),
    "recall_at_50_precision": lambda defect, major, scores:
        recall_at_precision(defect, scores, 0.5),
    "recall_at_1_fpr": lambda defect, major, scores: recall_at_fpr(defect, scores, 0.01),
}


def _severity(defect: np.ndarray, major: np.ndarray) -> np.ndarray:
    return defect.astype(np.int8) + major.astype(np.int8)  # 0 none, 1 minor, 2 major


def _benchmark_values(defect: np.ndarray, major: np.ndarray, scores: np.ndarray) -> np.ndarray:
    return np.array([100 * _safe(function, defect, major, scores)
                     for function in BENCHMARK_METRIC_FUNCTIONS.values()])


def bootstrap_benchmark_ci(defect: Sequence[bool], major: Sequence[bool],
                           scores: Sequence[float], *, n: int = 1000, seed: int = 0,
                           level: float = 0.95) -> dict[str, ConfidenceInterval]:
    """Intervals (in percent) for all five Table 2 metrics from the same resamples.

    Resampling is stratified by severity (none / minor / major), so AP_major stays defined
    whenever the data has a major defect. Keys are BenchmarkMetrics field names.
    """
    _check_settings(n, level)
    defect_array, major_array, score_array = _defect_and_major(defect, major, scores)
    validate(defect_array, score_array)
    estimates = _benchmark_values(defect_array, major_array, score_array)
    samples = np.array([_benchmark_values(defect_array[i], major_array[i], score_array[i])
                        for i in stratified_resamples(_severity(defect_array, major_array),
                                                      n, seed)])
    intervals = {}
    for column, name in enumerate(BENCHMARK_METRIC_FUNCTIONS):
        low, high, failed = _interval(samples[:, column], level)
        intervals[name] = ConfidenceInterval(float(estimates[column]), low, high, level, n,
                                             failed)
    return intervals


def paired_benchmark_differences(defect: Sequence[bool], major: Sequence[bool],
                                 scores_a: Sequence[float], scores_b: Sequence[float], *,
                                 n: int = 1000, seed: int = 0,
                                 level: float = 0.95) -> dict[str, PairedDifference]:
    """Paired bootstrap of B - A (percentage points) for all five Table 2 metrics."""
    _check_settings(n, level)
    defect_array, major_array, score_a = _defect_and_major(defect, major, scores_a)
    _, _, score_b = _defect_and_major(defect_array, major_array, scores_b)
    validate(defect_array, score_a)
    values_a = _benchmark_values(defect_array, major_array, score_a)
    values_b = _benchmark_values(defect_array, major_array, score_b)
    differences = np.array([
        _benchmark_values(defect_array[i], major_array[i], score_b[i])
        - _benchmark_values(defect_array[i], major_array[i], score_a[i])
        for i in stratified_resamples(_severity(defect_array, major_array), n, seed)])
    results = {}
    for column, name in enumerate(BENCHMARK_METRIC_FUNCTIONS):
        low, high, failed = _interval(differences[:, column], level)
        results[name] = PairedDifference(float(values_a[column]), float(values_b[column]),
                                         float(values_b[column] - values_a[column]), low, high,
                                         level, n, failed)
    return results
