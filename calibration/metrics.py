"""Ranking metrics of the benchmark (DESIGN.md §3, Kaputt paper Table 2), in plain numpy.

Convention everywhere: ``labels`` are truthy for the positive class (defective), a higher
score means "more likely defective", and an item is flagged when ``score >= threshold``.
Thresholds are only ever placed at distinct score values, so tied scores are never split:
a group of tied captures is flagged or passed as a whole.

Degenerate input (empty, length mismatch, NaN or infinite scores, only one class) raises
:class:`MetricError` with a message that says what is wrong, never a silent 0 or NaN.
The bootstrap helpers live in :mod:`calibration.bootstrap` and are re-exported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Mapping, NamedTuple, Sequence

import numpy as np

ArrayLike = Sequence[float] | Sequence[bool] | np.ndarray

# Table 2 of the paper, in column order.
TABLE_COLUMNS: tuple[str, ...] = (
    "AP_any [%]", "AP_major [%]", "AUROC [%]", "R@50%P [%]", "R@1%FPR [%]")


class MetricError(ValueError):
    """A metric cannot be computed from this input; the message says why."""


# --------------------------------------------------------------------------- validation

def _as_labels(labels: ArrayLike, name: str = "labels") -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim != 1:
        raise MetricError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.dtype == bool:
        return array
    if array.size and not np.issubdtype(array.dtype, np.number):
        raise MetricError(f"{name} must be booleans or 0/1, got dtype {array.dtype}")
    if array.size and not np.all(np.isin(array, (0, 1))):
        bad = array[~np.isin(array, (0, 1))][:3]
        raise MetricError(f"{name} must be booleans or 0/1, found {bad.tolist()}")
    return array.astype(bool)


def _as_scores(scores: ArrayLike, name: str = "scores") -> np.ndarray:
    try:
        array = np.asarray(scores, dtype=float)
    except (TypeError, ValueError) as error:
        raise MetricError(f"{name} must be numbers: {error}") from error
    if array.ndim != 1:
        raise MetricError(f"{name} must be one-dimensional, got shape {array.shape}")
    bad = ~np.isfinite(array)
    if bad.any():
        raise MetricError(f"{name} contain {int(bad.sum())} NaN or infinite value(s), first at "
                          f"index {int(np.argmax(bad))}; drop or fix those captures first")
    return array


def validate(labels: ArrayLike, scores: ArrayLike, *, need_positives: bool = True,
             need_negatives: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Labels as bool and scores as float, or :class:`MetricError` naming the problem."""
    label_array, score_array = _as_labels(labels), _as_scores(scores)
    if label_array.size != score_array.size:
        raise MetricError(f"labels and scores differ in length: {label_array.size} labels, "
                          f"{score_array.size} scores")
    if label_array.size == 0:
        raise MetricError("no captures: labels and scores are empty")
    positives = int(label_array.sum())
    if need_positives and positives == 0:
        raise MetricError(f"no positives (defective captures) among {label_array.size}; "
                          f"the metric is undefined")
    if need_negatives and positives == label_array.size:
        raise MetricError(f"no negatives (non-defective captures) among {label_array.size}; "
                          f"the metric is undefined")
    return label_array, score_array


# ------------------------------------------------------------------- operating points

@dataclass(frozen=True)
class OperatingPoints:
    """Confusion counts at every distinct score threshold, highest threshold first.

    Row ``i`` flags every capture with ``score >= thresholds[i]``; the last row flags all.
    """

    thresholds: np.ndarray
    true_positives: np.ndarray
    false_positives: np.ndarray
    positives: int
    negatives: int

    @property
    def recall(self) -> np.ndarray:
        return self.true_positives / self.positives if self.positives else \
            np.full(self.thresholds.shape, np.nan)

    @property
    def fpr(self) -> np.ndarray:
        return self.false_positives / self.negatives if self.negatives else \
            np.full(self.thresholds.shape, np.nan)

    @property
    def precision(self) -> np.ndarray:
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged  # flagged >= 1 at every distinct threshold

    @property
    def f1(self) -> np.ndarray:
        # 2TP / (2TP + FP + FN): no division by zero while there is a positive.
        denominator = 2 * self.true_positives + self.false_positives + \
            (self.positives - self.true_positives)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denominator > 0, 2 * self.true_positives / denominator, 0.0)


def operating_points(labels: ArrayLike, scores: ArrayLike, *, need_positives: bool = True,
                     need_negatives: bool = True) -> OperatingPoints:
    """Cumulative TP/FP counts at each distinct score value, for curves and thresholds."""
    label_array, score_array = validate(labels, scores, need_positives=need_positives,
                                        need_negatives=need_negatives)
    order = np.argsort(-score_array, kind="mergesort")
    sorted_scores, sorted_labels = score_array[order], label_array[order]
    # Last index of each run of equal scores: a threshold there flags the whole run.
    run_ends = np.r_[np.flatnonzero(np.diff(sorted_scores) != 0), sorted_scores.size - 1]
    true_positives = np.cumsum(sorted_labels)[run_ends]
    false_positives = (run_ends + 1) - true_positives
    return OperatingPoints(sorted_scores[run_ends], true_positives.astype(np.int64),
                           false_positives.astype(np.int64), int(label_array.sum()),
                           int((~label_array).sum()))


# ------------------------------------------------------------------------ the metrics

def average_precision(labels: ArrayLike, scores: ArrayLike) -> float:
    """Step-wise AP = sum over thresholds of (R_k - R_{k-1}) * P_k, as sklearn computes it.

    No interpolation; tied scores form one step. Needs positives and negatives.
    """
    points = operating_points(labels, scores)
    recall_steps = np.diff(np.r_[0, points.true_positives]) / points.positives
    return float(np.sum(recall_steps * points.precision))


def auroc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties half."""
    label_array, score_array = validate(labels, scores)
    ranks = _average_ranks(score_array)
    positives = int(label_array.sum())
    negatives = label_array.size - positives
    rank_sum = float(ranks[label_array].sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks (Mann-Whitney)."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_values) != 0) + 1]
    ends = np.r_[starts[1:], values.size]
    mean_rank = (starts + ends + 1) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(values.size)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def recall_at_precision(labels: ArrayLike, scores: ArrayLike,
                        min_precision: float = 0.5) -> float:
    """Highest recall over thresholds whose precision is >= ``min_precision``.

    Returns 0.0 when no threshold reaches that precision (flagging nothing has recall 0),
    which is how the paper's random baseline gets R@50%P = 0.
    """
    if not 0 <= min_precision <= 1:
        raise MetricError(f"min_precision must be in [0, 1], got {min_precision}")
    points = operating_points(labels, scores)
    meets = points.precision >= min_precision
    return float(points.recall[meets].max()) if meets.any() else 0.0


def recall_at_fpr(labels: ArrayLike, scores: ArrayLike, max_fpr: float = 0.01) -> float:
    """Highest recall over thresholds whose false-positive rate is <= ``max_fpr``.

    Thresholds sit at distinct score values only, so a tie is never split to squeeze under
    the FPR; 0.0 when even the highest score has too many negatives tied or above it.
    """
    if not 0 <= max_fpr <= 1:
        raise MetricError(f"max_fpr must be in [0, 1], got {max_fpr}")
    points = operating_points(labels, scores)
    meets = points.fpr <= max_fpr
    return float(points.recall[meets].max()) if meets.any() else 0.0


class PrecisionRecallCurve(NamedTuple):
    """Precision and recall when flagging ``score >= thresholds[i]``, highest first."""

    precision: np.ndarray
    recall: np.ndarray
    thresholds: np.ndarray


class RocCurve(NamedTuple):
    """FPR and TPR per threshold; starts at (0, 0) with threshold +inf, ends at (1, 1)."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray


def precision_recall_curve(labels: ArrayLike, scores: ArrayLike) -> PrecisionRecallCurve:
    """One point per distinct score (no artificial (0, 1) point: plots add it if wanted)."""
    points = operating_points(labels, scores, need_negatives=False)
    return PrecisionRecallCurve(points.precision, points.recall, points.thresholds)


def roc_curve(labels: ArrayLike, scores: ArrayLike) -> RocCurve:
    """ROC points at every distinct score, plus the all-pass start point."""
    points = operating_points(labels, scores)
    return RocCurve(np.r_[0.0, points.fpr], np.r_[0.0, points.recall],
                    np.r_[np.inf, points.thresholds])


# ----------------------------------------------------------------- benchmark summary

@dataclass(frozen=True)
class BenchmarkMetrics:
    """The five numbers of the paper's Table 2, in percent (0-100), on ``count`` captures.

    ``ap_major`` is NaN when the non-defective + major subset has no major defect; the
    reason is in ``notes``.
    """

    ap_any: float
    ap_major: float
    auroc: float
    recall_at_50_precision: float
    recall_at_1_fpr: float
    count: int
    positives: int
    majors: int = 0
    notes: tuple[str, ...] = field(default=())

    def values(self) -> tuple[float, float, float, float, float]:
        """The five metrics in Table 2 column order (see TABLE_COLUMNS)."""
        return (self.ap_any, self.ap_major, self.auroc, self.recall_at_50_precision,
                self.recall_at_1_fpr)

    def as_row(self, digits: int = 2) -> tuple[str, ...]:
        """Table 2 cells as text, e.g. ('90.67', '91.45', ...); NaN shows as 'n/a'."""
        return tuple(format_percent(value, digits) for value in self.values())

    def as_dict(self) -> dict[str, float | int | list[str]]:
        """Plain types, for JSON or YAML next to a run."""
        return {"ap_any": self.ap_any, "ap_major": self.ap_major, "auroc": self.auroc,
                "recall_at_50_precision": self.recall_at_50_precision,
                "recall_at_1_fpr": self.recall_at_1_fpr, "count": self.count,
                "positives": self.positives, "majors": self.majors,
                "notes": list(self.notes)}


def format_percent(value: float, digits: int = 2) -> str:
    """A percentage cell as the paper prints it; NaN becomes 'n/a'."""
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _defect_and_major(defect: ArrayLike, major: ArrayLike,
                      scores: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    defect_array = _as_labels(defect, "defect")
    major_array = _as_labels(major, "major")
    score_array = _as_scores(scores)
    if not defect_array.size == major_array.size == score_array.size:
        raise MetricError(f"defect, major and scores differ in length: {defect_array.size}, "
                          f"{major_array.size}, {score_array.size}")
    inconsistent = major_array & ~defect_array
    if inconsistent.any():
        raise MetricError(f"{int(inconsistent.sum())} capture(s) are marked major but not "
                          f"defective, first at index {int(np.argmax(inconsistent))}")
    return defect_array, major_array, score_array


def ap_major(defect: ArrayLike, major: ArrayLike, scores: ArrayLike) -> float:
    """AP of major defects on the subset of non-defective and major-defect captures."""
    defect_array, major_array, score_array = _defect_and_major(defect, major, scores)
    subset = ~defect_array | major_array
    if not major_array.any():
        raise MetricError("no major defects: AP_major is undefined")
    return average_precision(major_array[subset], score_array[subset])


def benchmark_metrics(defect: Sequence[bool], major: Sequence[bool],
                      scores: Sequence[float]) -> BenchmarkMetrics:
    """All Table 2 metrics for one scorer on one set of captures, in percent."""
    defect_array, major_array, score_array = _defect_and_major(defect, major, scores)
    validate(defect_array, score_array)
    notes: list[str] = []
    majors = int(major_array.sum())
    if majors:
        major_ap = 100 * ap_major(defect_array, major_array, score_array)
    else:
        major_ap = math.nan
        notes.append("AP_major n/a: no major defects among these captures")
    return BenchmarkMetrics(
        ap_any=100 * average_precision(defect_array, score_array),
        ap_major=major_ap,
        auroc=100 * auroc(defect_array, score_array),
        recall_at_50_precision=100 * recall_at_precision(defect_array, score_array, 0.5),
        recall_at_1_fpr=100 * recall_at_fpr(defect_array, score_array, 0.01),
        count=int(defect_array.size), positives=int(defect_array.sum()), majors=majors,
        notes=tuple(notes))


# ------------------------------------------------------------------ group breakdowns

GroupPairing = Literal["positives_vs_all_negatives", "within_group",
                       "negatives_vs_all_positives"]


@dataclass(frozen=True)
class GroupMetrics:
    """Metrics of one group, or ``metrics=None`` and a note saying why not."""

    name: str
    count: int
    positives: int
    negatives: int
    metrics: BenchmarkMetrics | None
    note: str = ""


def breakdown(groups: Mapping[str, ArrayLike], defect: Sequence[bool], major: Sequence[bool],
              scores: Sequence[float], *, pairing: GroupPairing = "positives_vs_all_negatives",
              min_positives: int = 5, min_negatives: int = 5) -> dict[str, GroupMetrics]:
    """Table 2 metrics per group (boolean mask over all captures), in the given order.

    Which captures each group is evaluated on:

    - ``positives_vs_all_negatives`` (default; per defect type, per severity): the group's
      defective captures + every non-defective capture. Non-defective captures in the mask
      are irrelevant. "How well are defects of this kind ranked above the good items?"
    - ``within_group`` (per material, per station): only the group's captures, both
      classes. "How well does the scorer work on cardboard?"
    - ``negatives_vs_all_positives`` (look-alikes, e.g. printed damage artwork): the group's
      non-defective captures + every defective capture. "Do these good items get ranked
      among the defects?"

    A group with fewer than ``min_positives`` positives or ``min_negatives`` negatives in its
    evaluation set gets ``metrics=None`` and a note instead of an unreliable number.
    """
    defect_array, major_array, score_array = _defect_and_major(defect, major, scores)
    results: dict[str, GroupMetrics] = {}
    for name, mask in groups.items():
        mask_array = _as_labels(mask, f"mask of group {name!r}")
        if mask_array.size != defect_array.size:
            raise MetricError(f"mask of group {name!r} has {mask_array.size} entries for "
                              f"{defect_array.size} captures")
        if pairing == "positives_vs_all_negatives":
            selected = (mask_array & defect_array) | ~defect_array
        elif pairing == "within_group":
            selected = mask_array
        elif pairing == "negatives_vs_all_positives":
            selected = (mask_array & ~defect_array) | defect_array
        else:
            raise MetricError(f"unknown pairing {pairing!r}; use one of {GroupPairing}")
        positives = int((selected & defect_array).sum())
        negatives = int((selected & ~defect_array).sum())
        count = int(selected.sum())
        if positives < min_positives or negatives < min_negatives:
            note = (f"too few to measure: {positives} defective and {negatives} "
                    f"non-defective (need at least {min_positives} and {min_negatives})")
            results[name] = GroupMetrics(name, count, positives, negatives, None, note)
            continue
        metrics = benchmark_metrics(defect_array[selected], major_array[selected],
                                    score_array[selected])
        results[name] = GroupMetrics(name, count, positives, negatives, metrics,
                                     "; ".join(metrics.notes))
    return results


# Bootstrap helpers live in their own module; re-exported lazily (no import cycle).
_BOOTSTRAP_NAMES = ("bootstrap_ci", "paired_difference_ci", "ConfidenceInterval",
                    "PairedDifference", "bootstrap_benchmark_ci",
                    "paired_benchmark_differences")


def __getattr__(name: str):
    if name in _BOOTSTRAP_NAMES:
        from calibration import bootstrap
        return getattr(bootstrap, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
