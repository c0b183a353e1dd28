"""Threshold step: method parsing, fitting on validation scores with known outcome,
judging the fit, and saving it as a new profile version with its provenance."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.metrics import MetricError
from calibration.profile import (CameraProfile, ProfileStore, StationProfile,
                                 ThresholdsProfile)
from calibration.threshold_step import (DEFAULT_METHOD, METHOD_CHOICES, ValidationScores,
                                        check_method, choose_thresholds, fit_thresholds,
                                        save_thresholds)


def validation(good: int = 400, defective: int = 100, seed: int = 0) -> ValidationScores:
    """Good items score low, defects high, with overlap: a realistic validation run."""
    rng = np.random.default_rng(seed)
    scores = np.r_[rng.beta(2, 8, good), rng.beta(6, 3, defective)]
    labels = np.r_[np.zeros(good, bool), np.ones(defective, bool)]
    return ValidationScores(labels, scores, "synthetic validation, replay runs/val",
                            {"scorer": "1.2.0", "segmenter": "1.0.0"})


def test_default_method_sidelines_at_most_one_percent_and_reports_expected_recall():
    data = validation()
    fit = choose_thresholds(data, DEFAULT_METHOD, date="2025-05-01T10:00:00+00:00")
    assert fit.passed, fit.failures
    good_scores, bad_scores = data.scores[~data.labels], data.scores[data.labels]
    # Known truth, counted directly on the scores.
    assert np.mean(good_scores >= fit.ok_below) <= 0.01
    assert fit.expected_fpr == pytest.approx(np.mean(good_scores >= fit.ok_below))
    assert fit.expected_recall == pytest.approx(np.mean(bad_scores >= fit.ok_below))
    above = data.scores > fit.damaged_above
    assert data.labels[above].mean() >= 0.9
    between = (data.scores >= fit.ok_below) & (data.scores <= fit.damaged_above)
    assert fit.review_fraction == pytest.approx(between.mean())
    provenance = fit.provenance
    assert provenance.data_set == data.data_set and provenance.date.startswith("2025-05-01")
    assert provenance.model_versions == {"scorer": "1.2.0", "segmenter": "1.0.0"}
    assert "fpr<=0.01" in provenance.method and "precision>=0.9" in provenance.method
    assert provenance.parameters["good_captures"] == 400
    assert provenance.expected_recall == fit.expected_recall


@pytest.mark.parametrize("method", list(METHOD_CHOICES) + ["station", "recall:0.9"])
def test_every_offered_method_fits(method):
    fit = choose_thresholds(validation(), method)
    assert 0 <= fit.ok_below <= fit.damaged_above <= 1
    if "," not in method and method != "station":
        assert fit.ok_below == fit.damaged_above  # one goal: no REVIEW band
        assert "no REVIEW band" in " ".join(fit.chosen.notes)


def test_too_little_validation_data_fails_the_step():
    fit = choose_thresholds(validation(good=60, defective=5), "fpr:0.01,precision:0.9")
    assert not fit.passed
    assert any("only 5 defective" in failure for failure in fit.failures)
    assert any("an FPR of 1.00% needs at least 100" in failure for failure in fit.failures)


def test_unreachable_goals_are_failures():
    # Every good item ties with a defect: no threshold reaches 90 % precision.
    labels = np.r_[np.zeros(200, bool), np.ones(200, bool)]
    scores = np.r_[np.linspace(0, 1, 200), np.linspace(0, 1, 200)]
    fit = choose_thresholds(ValidationScores(labels, scores, "ties"), "fpr:0.01,precision:0.9")
    assert any("damaged_above goal not reached" in failure for failure in fit.failures)


@pytest.mark.parametrize("method, message", [
    ("fpr", "unknown threshold goal"), ("speed:0.1", "unknown threshold goal"),
    ("fpr:abc", "is not a number"), ("fpr:2", "fraction"), ("fpr:0.1,recall:0.9,max_f1",
                                                            "one or two goals")])
def test_bad_methods_are_refused_before_fitting(method, message):
    with pytest.raises(MetricError, match=message):
        check_method(method)
    with pytest.raises(MetricError, match=message):
        fit_thresholds(method, [0, 1], [0.1, 0.9])


def test_validation_scores_must_pair_up():
    with pytest.raises(MetricError, match="3 labels but 2 scores"):
        ValidationScores([0, 1, 1], [0.2, 0.3], "x")


def test_saving_creates_a_new_version_keeping_the_other_sections(tmp_path):
    store = ProfileStore(tmp_path)
    store.save_new_version(StationProfile(station_id="bay-3",
                                          camera=CameraProfile(exposure_us=7000)), "ana")
    fit = choose_thresholds(validation(), DEFAULT_METHOD)
    saved = save_thresholds(store, fit, "ben")
    assert saved.label == "v0002" and saved.based_on == 1 and "thresholds" in saved.note
    current = store.current()
    assert current.camera.exposure_us == 7000 and current.station_id == "bay-3"
    assert current.thresholds == ThresholdsProfile(fit.ok_below, fit.damaged_above,
                                                   fit.provenance)
    recorded = current.thresholds.provenance
    assert recorded.expected_recall == pytest.approx(fit.expected_recall)
    assert recorded.parameters["method_spec"] == DEFAULT_METHOD
    assert store.get(1).thresholds is None   # the earlier version is untouched
