"""Fusion fitting: the Newton fit recovers known weights; both branches are calibrated."""

from __future__ import annotations

import numpy as np
import pytest

from engines.fusion import FusionModel, logit
from training.fusion_fit import ScoredQuery, fit_fusion, fit_logistic


def test_newton_fit_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 2))
    y = rng.random(4000) < 1 / (1 + np.exp(-(0.5 + 2.0 * x[:, 0] - 1.0 * x[:, 1])))
    intercept, coefficients = fit_logistic(x, y, l2=0.0)
    assert intercept == pytest.approx(0.5, abs=0.15)
    np.testing.assert_allclose(coefficients, [2.0, -1.0], atol=0.2)


def _queries(count: int, seed: int) -> list[ScoredQuery]:
    """Defects raise p_any a little and the reference score a lot; a third lack references."""
    rng = np.random.default_rng(seed)
    queries = []
    for index in range(count):
        defect = bool(rng.random() < 0.3)
        p_any = float(1 / (1 + np.exp(-(rng.normal(0, 1) + (1.0 if defect else -1.0)))))
        reference = (None if index % 3 == 0
                     else float(rng.normal(0.3 if defect else 0.1, 0.05)))
        queries.append(ScoredQuery(f"q{index}", defect, False, (), False, p_any, p_any / 2,
                                   (), reference))
    return queries


def test_fitted_fusion_uses_references_and_is_calibrated_without_them():
    train, test = _queries(600, 1), _queries(600, 2)
    model = fit_fusion(train, {"data_set": "synthetic"})
    assert model.coefficients["reference_score"] > 0
    labels = np.array([q.defect for q in test])
    without = np.array([model.probability(q.p_any, q.p_major, None) for q in test])
    assert without.mean() == pytest.approx(labels.mean(), abs=0.05)   # calibrated on average
    with_refs = [q for q in test if q.reference_score is not None]
    fused = np.array([model.probability(q.p_any, q.p_major, q.reference_score) for q in with_refs])
    truth = np.array([q.defect for q in with_refs])
    supervised_only = np.array([q.p_any for q in with_refs])
    # references make the fused ranking better than p_any alone
    def auc(scores):
        return (scores[truth][:, None] > scores[~truth][None, :]).mean()
    assert auc(fused) > auc(supervised_only) + 0.05


def test_fitting_needs_both_classes():
    with pytest.raises(ValueError):
        fit_logistic(np.zeros((5, 1)), np.zeros(5, bool))


def test_item_scores_get_their_own_weight_only_when_every_query_has_one():
    rng = np.random.default_rng(3)
    queries = []
    for query in _queries(600, 3):
        # The item scorer sees what the tray scorer misses: informative about the label.
        item = float(1 / (1 + np.exp(-(rng.normal(0, 0.5) + (2.0 if query.defect else -2.0)))))
        queries.append(ScoredQuery(**{**query.__dict__, "item_p_any": item,
                                      "item_p_major": item / 2}))
    with_items = fit_fusion(queries, {})
    assert with_items.coefficients["logit_item_p_any"] > with_items.coefficients["logit_p_any"] > 0
    without = fit_fusion(queries[:-1] + [_queries(1, 9)[0]], {})   # one query lacks it
    assert "logit_item_p_any" not in without.coefficients


def test_the_fit_records_the_item_scoring_the_station_checks():
    """A fusion fitted with some item-crop settings opens without a warning at those
    settings and with one at another second look: the fitter writes what the station's
    check reads."""
    from pathlib import Path

    from station_app.replay.setup import fusion_mismatches
    from training.fusion_fit import item_scoring_provenance, open_scorer

    models = Path(__file__).resolve().parents[2] / "engines" / "models"
    scorer, _ = open_scorer(models / "scorer.onnx")
    for second, other in ((768, 0), (0, 768)):
        fitted_with, sha = open_scorer(models / "item_scorer.onnx", views=2, size=576,
                                       second_size=second)
        fusion = FusionModel(0.0, {"logit_item_p_any": 1.0},
                             provenance=item_scoring_provenance(fitted_with, sha))
        assert fusion_mismatches(fusion, scorer, fitted_with) == []
        used, _ = open_scorer(models / "item_scorer.onnx", views=2, size=576, second_size=other)
        mismatches = fusion_mismatches(fusion, scorer, used)
        assert len(mismatches) == 1 and "second look" in mismatches[0], mismatches
    assert item_scoring_provenance(None, None) == {}
