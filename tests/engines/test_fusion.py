"""Fusion: the no-reference branch, monotonicity, YAML round trip and load errors."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from engines.fusion import FEATURE_NAMES, FusionError, FusionModel, load_fusion, save_fusion

MODEL = FusionModel(intercept=-1.0, coefficients={
    "logit_p_any": 0.8, "logit_p_major": 0.3, "reference_score": 1.5, "has_references": -0.4,
    "logit_p_any_with_references": -0.2}, reference_centre=0.2, reference_scale=0.05,
    provenance={"data_set": "synthetic", "scorer_sha256": "ab" * 32})


def test_without_references_the_no_reference_branch_is_used():
    fused = MODEL.probability(0.7, 0.2, None)
    expected = 1 / (1 + np.exp(-(-1.0 + 0.8 * np.log(0.7 / 0.3) + 0.3 * np.log(0.2 / 0.8))))
    assert 0.0 <= fused <= 1.0
    assert fused == pytest.approx(expected)
    assert MODEL.probability(0.7, 0.2, float("nan")) == pytest.approx(expected)


def test_fused_score_is_monotone_in_p_any_and_reference_score():
    p_values = np.linspace(0.0, 1.0, 21)
    without = [MODEL.probability(p, 0.1) for p in p_values]
    with_refs = [MODEL.probability(p, 0.1, 0.25) for p in p_values]
    assert np.all(np.diff(without) > 0) and np.all(np.diff(with_refs) > 0)
    references = [MODEL.probability(0.3, 0.1, r) for r in (0.1, 0.2, 0.3)]
    assert references[0] < references[1] < references[2]


def test_reference_evidence_is_the_reference_term():
    assert MODEL.reference_evidence(0.5, 0.5, 0.3) == pytest.approx(1.5 * (0.3 - 0.2) / 0.05)
    assert MODEL.reference_evidence(0.5, 0.5, None) == 0.0


def test_yaml_round_trip_keeps_every_number(tmp_path):
    path = save_fusion(MODEL, tmp_path / "fusion.yaml")
    loaded = load_fusion(path)
    assert loaded.to_dict() == MODEL.to_dict()
    assert loaded.probability(0.4, 0.1, 0.27) == pytest.approx(MODEL.probability(0.4, 0.1, 0.27))
    text = path.read_text()
    assert all(name in text for name in FEATURE_NAMES) and "provenance" in text


def test_supervised_only_fallback_is_p_any():
    assert FusionModel.supervised_only().probability(0.37, 0.9, 0.5) == pytest.approx(0.37)


@pytest.mark.parametrize("edit, field", [
    (lambda d: d.pop("intercept"), "intercept"),
    (lambda d: d["coefficients"].update(logit_p_any="high"), "coefficients.logit_p_any"),
    (lambda d: d["coefficients"].update(colour=1.0), "colour"),
    (lambda d: d.update(reference_scale=0.0), "reference_scale"),
    (lambda d: d.update(format_version=99), "format_version"),
])
def test_a_bad_file_is_refused_naming_the_field(tmp_path, edit, field):
    import yaml
    data = MODEL.to_dict()
    edit(data)
    path = tmp_path / "fusion.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(FusionError, match=field) as error:
        load_fusion(path)
    assert str(path) in str(error.value)


def test_without_an_item_score_the_tray_scores_stand_in():
    from engines.fusion import ItemScore
    model = FusionModel(0.2, {"logit_p_any": 0.5, "logit_item_p_any": 1.0,
                              "logit_item_p_major": 0.3})
    assert model.probability(0.6, 0.2) == pytest.approx(
        model.probability(0.6, 0.2, None, ItemScore(0.6, 0.2)))
    assert model.probability(0.6, 0.2, None, ItemScore(0.9, 0.2)) > model.probability(0.6, 0.2)


def test_a_file_from_before_the_item_scorer_loads_with_item_weights_zero(tmp_path):
    from engines.fusion import ItemScore
    data = MODEL.to_dict()
    for name in ("logit_item_p_any", "logit_item_p_major"):
        del data["coefficients"][name]
    path = tmp_path / "fusion.yaml"
    path.write_text(yaml.safe_dump(data))
    loaded = load_fusion(path)
    assert loaded.probability(0.4, 0.1, 0.27, ItemScore(0.99, 0.9)) == pytest.approx(
        MODEL.probability(0.4, 0.1, 0.27))
