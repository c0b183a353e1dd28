"""Decision thresholds from a validation run, and their record in the station profile.

The wizard's threshold step and ``station-app replay --fit-thresholds`` both come here:
a method (a goal for ``ok_below`` and one for ``damaged_above``) is applied to the
validation scores with ``calibration.thresholds``, and the result is written into a new
profile version with its provenance (data set, model versions, date, method, expected
recall and false-positive rate), so a profile always says where its thresholds came from.

Method syntax: one goal for both thresholds (no REVIEW band) or two separated by a comma,
the first for ``ok_below`` and the second for ``damaged_above``: ``max_f1``, ``fpr:F``,
``precision:P``, ``recall:R`` (fractions). ``station`` is the calibration default
(``verdict_thresholds``: ok_below at 1 % FPR, damaged_above at 90 % precision).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from calibration.metrics import MetricError
from calibration.profile import ProfileStore, ProfileVersion, ThresholdsProfile
from calibration.thresholds import (ThresholdChoice, ThresholdProvenance, VerdictThresholds,
                                    threshold_for_fpr, threshold_for_precision,
                                    threshold_for_recall, threshold_max_f1,
                                    verdict_thresholds)

GOALS = ("max_f1", "fpr:F", "precision:P", "recall:R", "station")

# Methods the wizard offers, with the words the technician picks them by.
METHOD_CHOICES: dict[str, str] = {
    "fpr:0.01,precision:0.9": "at most 1 % of good items sidelined; DAMAGED when at least "
                              "90 % of such captures are damaged",
    "fpr:0.005,precision:0.9": "at most 0.5 % of good items sidelined; DAMAGED at 90 % "
                               "precision",
    "fpr:0.05,precision:0.9": "at most 5 % of good items sidelined; DAMAGED at 90 % precision",
    "recall:0.95,precision:0.9": "catch at least 95 % of damaged items; DAMAGED at 90 % "
                                 "precision",
    "max_f1": "best F1 (one threshold, no REVIEW band)",
}
DEFAULT_METHOD = "fpr:0.01,precision:0.9"


_GOAL_FUNCTIONS = {"fpr": threshold_for_fpr, "precision": threshold_for_precision,
                   "recall": threshold_for_recall}


def _parse_goal(goal: str) -> tuple[str, float | None]:
    name, _, value = goal.strip().partition(":")
    if name == "max_f1" and not value:
        return name, None
    if name not in _GOAL_FUNCTIONS or not value:
        raise MetricError(f"unknown threshold goal {goal!r}; use one of {', '.join(GOALS)}")
    try:
        target = float(value)
    except ValueError:
        raise MetricError(f"threshold goal {goal!r}: {value!r} is not a number") from None
    if not 0 <= target <= 1:
        raise MetricError(f"threshold goal {goal!r}: the target must be a fraction in [0, 1]")
    return name, target


def check_method(method: str) -> None:
    """Raise MetricError for a method that cannot be fitted, before any scoring is done."""
    if method.strip() == "station":
        return
    goals = [goal for goal in method.split(",") if goal.strip()]
    if not 1 <= len(goals) <= 2:
        raise MetricError(f"a threshold method has one or two goals, got {method!r}")
    for goal in goals:
        _parse_goal(goal)


def _choice(goal: str, labels: np.ndarray, scores: np.ndarray) -> ThresholdChoice:
    name, target = _parse_goal(goal)
    if target is None:
        return threshold_max_f1(labels, scores)
    return _GOAL_FUNCTIONS[name](labels, scores, target)


def fit_thresholds(method: str, labels: Sequence[bool], scores: Sequence[float]
                   ) -> VerdictThresholds:
    """The (ok_below, damaged_above) pair ``method`` picks on these scores (module doc).

    Raises MetricError for an unknown method or unusable scores.
    """
    labels_array = np.asarray(labels, bool)
    scores_array = np.asarray(scores, np.float64)
    check_method(method)
    if method.strip() == "station":
        return verdict_thresholds(labels_array, scores_array)
    goals = [goal for goal in method.split(",") if goal.strip()]
    ok = _choice(goals[0], labels_array, scores_array)
    damaged = _choice(goals[-1], labels_array, scores_array)
    notes = [] if len(goals) == 2 else ["one goal for both thresholds: no REVIEW band"]
    if not ok.target_met:
        notes.append(f"ok_below: {ok.description}")
    if len(goals) == 2 and not damaged.target_met:
        notes.append(f"damaged_above: {damaged.description}; nothing is DAMAGED "
                     f"automatically, all flagged captures go to REVIEW")
    if damaged.threshold < ok.threshold:
        notes.append(f"damaged_above ({damaged.threshold:.4g}) was below ok_below "
                     f"({ok.threshold:.4g}) and is raised to it")
    return VerdictThresholds(ok.threshold, max(ok.threshold, damaged.threshold), ok, damaged,
                             tuple(notes))


@dataclass(frozen=True)
class ValidationScores:
    """A validation run's fused scores with their truth, and where they came from."""

    labels: np.ndarray            # True = defective
    scores: np.ndarray            # fused damage score per capture
    data_set: str                 # e.g. "kaputt validation split, replay runs/val-0412"
    model_versions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        labels = np.asarray(self.labels, bool).ravel()
        scores = np.asarray(self.scores, np.float64).ravel()
        if labels.shape != scores.shape:
            raise MetricError(f"{labels.size} labels but {scores.size} scores")
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "scores", scores)

    @property
    def defective(self) -> int:
        return int(self.labels.sum())

    @property
    def good(self) -> int:
        return int((~self.labels).sum())


@dataclass(frozen=True)
class ThresholdFit:
    """Chosen thresholds, what they are expected to do, and the provenance to record.

    Expected rates are measured on the validation scores: ``expected_recall`` and
    ``expected_fpr`` at ok_below (defects / good items that leave the OK path),
    ``damaged_precision`` and ``damaged_recall`` above damaged_above, ``review_fraction``
    of all captures between the two.
    """

    method: str
    chosen: VerdictThresholds
    provenance: ThresholdProvenance
    review_fraction: float
    good: int
    defective: int
    failures: tuple[str, ...] = ()

    @property
    def ok_below(self) -> float:
        return self.chosen.ok_below

    @property
    def damaged_above(self) -> float:
        return self.chosen.damaged_above

    @property
    def expected_recall(self) -> float:
        return self.chosen.ok_choice.recall

    @property
    def expected_fpr(self) -> float:
        return self.chosen.ok_choice.fpr

    @property
    def damaged_precision(self) -> float:
        return self.chosen.damaged_choice.precision

    @property
    def damaged_recall(self) -> float:
        return self.chosen.damaged_choice.recall

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_profile(self) -> ThresholdsProfile:
        return ThresholdsProfile(self.ok_below, self.damaged_above, self.provenance)


@dataclass(frozen=True)
class ThresholdCriteria:
    """When a fit is trustworthy enough to run the station on."""

    min_defective: int = 10
    # The FPR goal must be resolvable: at least this many good items per allowed false
    # positive (1 % needs 100 good items).
    min_good_per_false_positive: float = 1.0

    def describe(self, method: str) -> str:
        return (f"every goal of '{method}' reached on the validation scores, at least "
                f"{self.min_defective} defective captures, and enough good captures to "
                f"resolve the false-positive goal (1 / FPR)")


def _fpr_goal(method: str) -> float | None:
    if method.strip() == "station":
        return 0.01
    first = method.split(",")[0].strip()
    name, _, value = first.partition(":")
    try:
        return float(value) if name == "fpr" else None
    except ValueError:
        return None


def choose_thresholds(validation: ValidationScores, method: str = DEFAULT_METHOD, *,
                      date: str | None = None,
                      criteria: ThresholdCriteria = ThresholdCriteria()) -> ThresholdFit:
    """Fit thresholds with ``method`` and judge the fit against ``criteria``."""
    chosen = fit_thresholds(method, validation.labels, validation.scores)
    provenance = chosen.provenance(validation.data_set, validation.model_versions, date)
    scores = validation.scores
    review = float(np.mean((scores >= chosen.ok_below) & (scores <= chosen.damaged_above))) \
        if chosen.damaged_above > chosen.ok_below else 0.0
    parameters = dict(provenance.parameters)
    parameters.update({"method_spec": method.strip(), "good_captures": validation.good,
                       "defective_captures": validation.defective,
                       "review_fraction": review,
                       "damaged_precision": _finite_or_none(chosen.damaged_choice.precision),
                       "damaged_recall": chosen.damaged_choice.recall})
    provenance = ThresholdProvenance(**{**provenance.__dict__, "parameters": parameters})
    failures = []
    if not chosen.ok_choice.target_met:
        failures.append(f"ok_below goal not reached: {chosen.ok_choice.description}")
    if "," in method and not chosen.damaged_choice.target_met:
        failures.append(f"damaged_above goal not reached: {chosen.damaged_choice.description}")
    if validation.defective < criteria.min_defective:
        failures.append(f"only {validation.defective} defective captures (need at least "
                        f"{criteria.min_defective}): validate on more data")
    fpr = _fpr_goal(method)
    if fpr:
        needed = math.ceil(criteria.min_good_per_false_positive / fpr)
        if validation.good < needed:
            failures.append(f"only {validation.good} good captures: an FPR of {fpr:.2%} needs "
                            f"at least {needed} to be measured")
    return ThresholdFit(method.strip(), chosen, provenance, review, validation.good,
                        validation.defective, tuple(failures))


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def save_thresholds(store: ProfileStore, fit: ThresholdFit, author: str,
                    note: str = "") -> ProfileVersion:
    """A new profile version: the current profile with these thresholds (and provenance)."""
    note = note or (f"thresholds {fit.ok_below:.4f} / {fit.damaged_above:.4f} by "
                    f"{fit.method} on {fit.provenance.data_set}")
    return store.update_current(author, note, thresholds=fit.to_profile())
