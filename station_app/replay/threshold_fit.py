"""``--fit-thresholds``: station thresholds chosen on a replay's fused scores.

METHOD is one goal, used for both thresholds (no REVIEW band), or two goals separated by
a comma, the first for ``ok_below`` and the second for ``damaged_above``:
``max_f1``, ``fpr:F``, ``precision:P``, ``recall:R`` (fractions). ``station`` is the
calibration default (``verdict_thresholds``: ok_below at 1 % FPR, damaged_above at 90 %
precision). The result goes into the profile with its provenance (data set, models,
method, expected rates), so a profile always says where its thresholds came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from calibration.metrics import MetricError
from calibration.thresholds import (ThresholdChoice, VerdictThresholds, threshold_for_fpr,
                                    threshold_for_precision, threshold_for_recall,
                                    threshold_max_f1, verdict_thresholds, write_thresholds)
from station_app.errors import StationError

GOALS = ("max_f1", "fpr:F", "precision:P", "recall:R", "station")


def _choice(goal: str, labels: np.ndarray, scores: np.ndarray) -> ThresholdChoice:
    name, _, value = goal.strip().partition(":")
    if name == "max_f1" and not value:
        return threshold_max_f1(labels, scores)
    functions = {"fpr": threshold_for_fpr, "precision": threshold_for_precision,
                 "recall": threshold_for_recall}
    if name not in functions or not value:
        raise StationError(f"unknown threshold goal {goal!r}; use one of {', '.join(GOALS)}")
    try:
        target = float(value)
    except ValueError:
        raise StationError(f"threshold goal {goal!r}: {value!r} is not a number") from None
    return functions[name](labels, scores, target)


def fit_thresholds(method: str, labels: Sequence[bool], scores: Sequence[float]
                   ) -> VerdictThresholds:
    """The (ok_below, damaged_above) pair METHOD picks on these scores."""
    labels_array = np.asarray(labels, bool)
    scores_array = np.asarray(scores, np.float64)
    try:
        if method.strip() == "station":
            return verdict_thresholds(labels_array, scores_array)
        goals = [goal for goal in method.split(",") if goal.strip()]
        if not 1 <= len(goals) <= 2:
            raise StationError(f"--fit-thresholds takes one or two goals, got {method!r}")
        ok = _choice(goals[0], labels_array, scores_array)
        damaged = _choice(goals[-1], labels_array, scores_array)
    except MetricError as error:
        raise StationError(f"cannot fit thresholds: {error}") from error
    notes = [] if len(goals) == 2 else ["one goal for both thresholds: no REVIEW band"]
    if damaged.threshold < ok.threshold:
        notes.append(f"damaged_above ({damaged.threshold:.4g}) was below ok_below "
                     f"({ok.threshold:.4g}) and is raised to it")
    return VerdictThresholds(ok.threshold, max(ok.threshold, damaged.threshold), ok, damaged,
                             tuple(notes))


def write_fitted_thresholds(profile: Path, chosen: VerdictThresholds, data_set: str,
                            model_versions: Mapping[str, str]) -> Path:
    try:
        return write_thresholds(profile, chosen.ok_below, chosen.damaged_above,
                                chosen.provenance(data_set, model_versions))
    except (MetricError, OSError) as error:
        raise StationError(f"cannot write thresholds to {profile}: {error}") from error
