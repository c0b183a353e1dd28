"""Decision thresholds from validation scores, and the provenance recorded with them.

Image level: the station's two thresholds on the fused damage score (OK below
``ok_below``, DAMAGED above ``damaged_above``, REVIEW between), chosen for a stated goal
(best F1, at most x % of good items sidelined, precision or recall at least y).
Pixel level: the heatmap threshold for segmenting damage, taken from the IoU curve as
the anomaly-localization benchmark recommends.

Every chosen threshold lies halfway between two adjacent distinct scores of the
calibration data, so ``score >= t`` and ``score > t`` flag exactly the same captures
there, and a tie is never split.

The chosen pair goes into a new station-profile version with its provenance through
``calibration.threshold_step.save_thresholds`` (profiles are versioned, never edited).
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from calibration.metrics import ArrayLike, MetricError, OperatingPoints, operating_points


@dataclass(frozen=True)
class ThresholdChoice:
    """One threshold and what it does on the calibration data (fractions, not percent).

    Captures with ``score >= threshold`` are flagged. ``precision`` is NaN when nothing is
    flagged; ``target_met`` is False when no threshold reaches the goal (then the
    threshold flags nothing, or everything for a recall goal cannot fail).
    """

    method: str
    threshold: float
    precision: float
    recall: float
    fpr: float
    f1: float
    description: str
    target_met: bool = True


@dataclass(frozen=True)
class ThresholdCurves:
    """Precision, recall, FPR and F1 against the threshold, highest threshold first."""

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    fpr: np.ndarray
    f1: np.ndarray


def threshold_curves(labels: ArrayLike, scores: ArrayLike) -> ThresholdCurves:
    """The curves to plot with the chosen points marked on them."""
    points = operating_points(labels, scores)
    return ThresholdCurves(_cut_values(points), points.precision, points.recall, points.fpr,
                           points.f1)


def _cut_values(points: OperatingPoints) -> np.ndarray:
    """Threshold between each distinct score and the next lower one (see module doc)."""
    scores = points.thresholds
    lower = np.r_[scores[1:], np.nan]
    cuts = (scores + lower) / 2
    cuts[-1] = np.nextafter(scores[-1], -np.inf)  # below the lowest score: flags everything
    return cuts


def _choice(points: OperatingPoints, row: int, method: str, description: str) -> ThresholdChoice:
    return ThresholdChoice(method, float(_cut_values(points)[row]),
                           float(points.precision[row]), float(points.recall[row]),
                           float(points.fpr[row]), float(points.f1[row]), description)


def _flag_nothing(points: OperatingPoints, method: str, description: str) -> ThresholdChoice:
    threshold = float(np.nextafter(points.thresholds[0], np.inf))
    return ThresholdChoice(method, threshold, math.nan, 0.0, 0.0, 0.0, description,
                           target_met=False)


def _summary(choice_rows: ThresholdChoice) -> str:
    return (f"precision {choice_rows.precision:.1%}, recall {choice_rows.recall:.1%}, "
            f"FPR {choice_rows.fpr:.2%}")


def threshold_max_f1(labels: ArrayLike, scores: ArrayLike) -> ThresholdChoice:
    """The threshold with the best F1; among equals the highest (fewest flagged)."""
    points = operating_points(labels, scores)
    row = int(np.argmax(points.f1))
    choice = _choice(points, row, "max_f1", "")
    return _replace_description(choice, f"best F1 ({choice.f1:.3f}): {_summary(choice)}")


def threshold_for_fpr(labels: ArrayLike, scores: ArrayLike, max_fpr: float) -> ThresholdChoice:
    """The lowest threshold that flags at most ``max_fpr`` of the good items (most recall).

    "Sideline at most 1 % of good items" is ``max_fpr=0.01``.
    """
    _check_fraction("max_fpr", max_fpr)
    points = operating_points(labels, scores)
    meets = np.flatnonzero(points.fpr <= max_fpr)
    method = f"fpr<={max_fpr:g}"
    if meets.size == 0:
        return _flag_nothing(points, method, f"no threshold keeps FPR <= {max_fpr:.2%}: the "
                             f"highest score is tied with too many good items; flags nothing")
    choice = _choice(points, int(meets[-1]), method, "")
    return _replace_description(
        choice, f"sidelines at most {max_fpr:.2%} of good items: {_summary(choice)}")


def threshold_for_precision(labels: ArrayLike, scores: ArrayLike,
                            min_precision: float) -> ThresholdChoice:
    """The lowest threshold whose flagged captures are at least ``min_precision`` defective."""
    _check_fraction("min_precision", min_precision)
    points = operating_points(labels, scores)
    meets = np.flatnonzero(points.precision >= min_precision)
    method = f"precision>={min_precision:g}"
    if meets.size == 0:
        return _flag_nothing(points, method, f"no threshold reaches precision "
                             f"{min_precision:.1%}; flags nothing")
    choice = _choice(points, int(meets[-1]), method, "")
    return _replace_description(
        choice, f"at least {min_precision:.1%} of flagged captures defective: "
                f"{_summary(choice)}")


def threshold_for_recall(labels: ArrayLike, scores: ArrayLike,
                         min_recall: float) -> ThresholdChoice:
    """The highest threshold that still catches ``min_recall`` of the defects (fewest FPs)."""
    _check_fraction("min_recall", min_recall)
    points = operating_points(labels, scores)
    row = int(np.flatnonzero(points.recall >= min_recall)[0])  # the last row has recall 1
    choice = _choice(points, row, f"recall>={min_recall:g}", "")
    return _replace_description(
        choice, f"catches at least {min_recall:.1%} of defects: {_summary(choice)}")


def _replace_description(choice: ThresholdChoice, description: str) -> ThresholdChoice:
    return ThresholdChoice(**{**asdict(choice), "description": description})


def _check_fraction(name: str, value: float) -> None:
    if not 0 <= value <= 1:
        raise MetricError(f"{name} must be a fraction in [0, 1], got {value}")


# ------------------------------------------------------------------- pixel threshold

@dataclass(frozen=True)
class PixelThresholdResult:
    """Best heatmap threshold by mean IoU, with the whole IoU curve.

    Only images whose defect mask is non-empty count (IoU is undefined for a defect-free
    image); ``images_used`` and ``images_skipped`` say how many.
    """

    threshold: float
    mean_iou: float
    candidates: np.ndarray
    mean_ious: np.ndarray
    images_used: int
    images_skipped: int


def pixel_threshold_max_iou(heatmaps: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                            candidates: Sequence[float] | int = 101) -> PixelThresholdResult:
    """Mean IoU of ``heatmap >= t`` against the defect masks for each candidate ``t``.

    ``candidates`` is a list of thresholds or a count of evenly spaced ones over the range
    of heatmap values in the counted images. Heatmap and mask of an image must have the
    same shape (resize the heatmap first). Ties go to the lowest best threshold.
    """
    if len(heatmaps) != len(masks):
        raise MetricError(f"{len(heatmaps)} heatmaps but {len(masks)} masks")
    used: list[tuple[np.ndarray, np.ndarray]] = []
    skipped = 0
    for index, (heatmap, mask) in enumerate(zip(heatmaps, masks)):
        heat, truth = np.asarray(heatmap, dtype=float), np.asarray(mask).astype(bool)
        if heat.shape != truth.shape:
            raise MetricError(f"image {index}: heatmap shape {heat.shape} differs from mask "
                              f"shape {truth.shape}; resize the heatmap to the mask first")
        if not np.isfinite(heat).all():
            raise MetricError(f"image {index}: heatmap has NaN or infinite values")
        if truth.any():
            used.append((heat.ravel(), truth.ravel()))
        else:
            skipped += 1
    if not used:
        raise MetricError(f"no image has a non-empty defect mask ({skipped} empty); the IoU "
                          f"curve needs defective images")
    if isinstance(candidates, (int, np.integer)):
        low = min(float(heat.min()) for heat, _ in used)
        high = max(float(heat.max()) for heat, _ in used)
        grid = np.linspace(low, high, int(candidates))
    else:
        grid = np.asarray(candidates, dtype=float)
        if grid.ndim != 1 or grid.size == 0:
            raise MetricError("candidates must be a non-empty list of thresholds or a count")
    ious = np.zeros((len(used), grid.size))
    for row, (heat, truth) in enumerate(used):
        ious[row] = _iou_per_threshold(heat, truth, grid)
    mean_ious = ious.mean(axis=0)
    best = int(np.argmax(mean_ious))
    return PixelThresholdResult(float(grid[best]), float(mean_ious[best]), grid, mean_ious,
                                len(used), skipped)


def _iou_per_threshold(heat: np.ndarray, truth: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """IoU of ``heat >= t`` with ``truth`` for every ``t`` in ``grid``, by sorted counts."""
    all_sorted = np.sort(heat)
    defect_sorted = np.sort(heat[truth])
    predicted = heat.size - np.searchsorted(all_sorted, grid, side="left")
    intersection = defect_sorted.size - np.searchsorted(defect_sorted, grid, side="left")
    union = predicted + defect_sorted.size - intersection
    return intersection / union  # union >= mask size > 0


# ------------------------------------------------------------ the station's thresholds

@dataclass(frozen=True)
class ThresholdProvenance:
    """Where a pair of station thresholds came from, written next to them."""

    data_set: str
    model_versions: Mapping[str, str]
    date: str
    method: str
    parameters: Mapping[str, Any]
    expected_recall: float
    expected_fpr: float


@dataclass(frozen=True)
class VerdictThresholds:
    """OK when score < ok_below, DAMAGED when score > damaged_above, REVIEW between."""

    ok_below: float
    damaged_above: float
    ok_choice: ThresholdChoice
    damaged_choice: ThresholdChoice
    notes: tuple[str, ...] = field(default=())

    def provenance(self, data_set: str, model_versions: Mapping[str, str],
                   date: str | None = None) -> ThresholdProvenance:
        """The provenance block for these thresholds; expected rates are at ok_below."""
        return ThresholdProvenance(
            data_set=data_set, model_versions=dict(model_versions),
            date=date or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            method=f"ok_below: {self.ok_choice.method}; damaged_above: "
                   f"{self.damaged_choice.method}",
            parameters={"ok_below": self.ok_choice.description,
                        "damaged_above": self.damaged_choice.description,
                        "notes": list(self.notes)},
            expected_recall=self.ok_choice.recall, expected_fpr=self.ok_choice.fpr)


def verdict_thresholds(labels: ArrayLike, scores: ArrayLike, *,
                       ok_goal: Literal["fpr", "recall"] = "fpr", ok_target: float = 0.01,
                       damaged_min_precision: float = 0.9) -> VerdictThresholds:
    """The station's two thresholds from validation scores.

    ``ok_below``: everything at or above it leaves the OK path (REVIEW or DAMAGED); chosen
    to sideline at most ``ok_target`` of good items (``ok_goal="fpr"``) or to catch at least
    ``ok_target`` of defects (``ok_goal="recall"``). ``damaged_above``: the lowest
    threshold where at least ``damaged_min_precision`` of the captures above it are
    defective. If that lies below ``ok_below`` the REVIEW band is empty and damaged_above
    is raised to ok_below (noted).
    """
    if ok_goal == "fpr":
        ok_choice = threshold_for_fpr(labels, scores, ok_target)
    elif ok_goal == "recall":
        ok_choice = threshold_for_recall(labels, scores, ok_target)
    else:
        raise MetricError(f"ok_goal must be 'fpr' or 'recall', got {ok_goal!r}")
    damaged_choice = threshold_for_precision(labels, scores, damaged_min_precision)
    notes = []
    if not ok_choice.target_met:
        notes.append(f"ok_below: {ok_choice.description}")
    if not damaged_choice.target_met:
        notes.append(f"damaged_above: {damaged_choice.description}; nothing is DAMAGED "
                     f"automatically, all flagged captures go to REVIEW")
    damaged_above = damaged_choice.threshold
    if damaged_above < ok_choice.threshold:
        notes.append(f"the precision threshold ({damaged_above:.4g}) is below ok_below "
                     f"({ok_choice.threshold:.4g}); damaged_above raised to ok_below, so "
                     f"there is no REVIEW band")
        damaged_above = ok_choice.threshold
    return VerdictThresholds(ok_choice.threshold, damaged_above, ok_choice, damaged_choice,
                             tuple(notes))
