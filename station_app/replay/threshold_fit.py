"""``--fit-thresholds``: station thresholds chosen on a replay's fused scores.

The fitting itself lives in ``calibration.threshold_step`` (the calibration wizard's
threshold step uses the same code); this module turns its errors into StationErrors
and reads a finished replay run into the validation scores it needs. The result is a
new version in the station's profile store, with its provenance (data set, models,
date, method, expected rates), so a profile always says where its thresholds came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from calibration.metrics import MetricError
from calibration.profile import ProfileError, ProfileStore, ProfileVersion
from calibration.threshold_step import (GOALS, ThresholdFit, ValidationScores,
                                        choose_thresholds, save_thresholds)
from calibration.threshold_step import check_method as _check_method
from calibration.threshold_step import fit_thresholds as _fit_thresholds
from calibration.thresholds import VerdictThresholds
from station_app.errors import StationError

__all__ = ["GOALS", "check_method", "fit_thresholds", "validation_scores_from_run",
           "fit_run_thresholds", "write_fitted_thresholds"]


def fit_thresholds(method: str, labels: Sequence[bool], scores: Sequence[float]
                   ) -> VerdictThresholds:
    """The (ok_below, damaged_above) pair METHOD picks on these scores."""
    try:
        return _fit_thresholds(method, labels, scores)
    except MetricError as error:
        raise StationError(f"cannot fit thresholds: {error}") from error


def check_method(method: str) -> None:
    """Refuse a method that cannot be fitted before a long replay runs."""
    try:
        _check_method(method)
    except MetricError as error:
        raise StationError(f"--fit-thresholds: {error}") from error


def validation_scores_from_run(run_dir: Path) -> ValidationScores:
    """A finished replay run's fused scores and truth, named after its data set and run."""
    from station_app.replay.run_report import load_run

    data = load_run(run_dir, with_images=False, bootstrap_resamples=0)
    defect, _ = data.labels()
    try:
        return ValidationScores(defect, data.scores("fused"),
                                f"{data.data_set}, replay {run_dir}", data.model_versions)
    except MetricError as error:
        raise StationError(f"{run_dir}: {error}") from error


def fit_run_thresholds(run_dir: Path, method: str, date: str | None = None) -> ThresholdFit:
    """Thresholds fitted on a replay run, with provenance and the fit's pass/fail notes."""
    try:
        return choose_thresholds(validation_scores_from_run(run_dir), method, date=date)
    except MetricError as error:
        raise StationError(f"cannot fit thresholds: {error}") from error


def write_fitted_thresholds(store: ProfileStore, fit: ThresholdFit, author: str,
                            note: str = "") -> ProfileVersion:
    """Save the fitted thresholds as a new version of the station profile."""
    try:
        return save_thresholds(store, fit, author, note)
    except (ProfileError, OSError) as error:
        raise StationError(f"cannot save thresholds in the profile store {store.root}: "
                           f"{error}") from error

