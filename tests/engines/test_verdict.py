"""Verdict: thresholds, likely types and the heatmap shown."""

from __future__ import annotations

import numpy as np
import pytest

from engines.verdict import DecisionThresholds, decide, likely_types

THRESHOLDS = DecisionThresholds(ok_below=0.2, damaged_above=0.7)
TYPES = {"penetration": 0.8, "deformation": 0.55, "spillage": 0.1}
HEAT = np.zeros((4, 4), np.float32)


@pytest.mark.parametrize("score, label", [(0.0, "OK"), (0.199, "OK"), (0.2, "REVIEW"),
                                          (0.69, "REVIEW"), (0.7, "DAMAGED"), (1.0, "DAMAGED")])
def test_two_thresholds_split_the_score(score, label):
    assert decide(score, THRESHOLDS, TYPES, HEAT).label == label


def test_thresholds_out_of_order_are_refused():
    with pytest.raises(ValueError):
        DecisionThresholds(ok_below=0.8, damaged_above=0.5)


def test_likely_types_are_those_above_one_half_most_probable_first():
    assert decide(0.9, THRESHOLDS, TYPES, HEAT).likely_types == ("penetration", "deformation")
    assert decide(0.1, THRESHOLDS, TYPES, HEAT).likely_types == ()


def test_damaged_with_no_type_above_one_half_names_the_top_one():
    weak = {"penetration": 0.2, "spillage": 0.4}
    assert likely_types(weak, "DAMAGED") == ("spillage",)
    assert likely_types(weak, "REVIEW") == ()


def test_reference_map_is_merged_only_when_it_is_the_stronger_evidence():
    supervised = np.full((4, 4), 0.1, np.float32)
    reference = np.zeros((4, 4), np.float32)
    reference[1, 2] = 0.9
    weak = decide(0.8, THRESHOLDS, TYPES, supervised, reference, reference_evidence=0.5,
                  supervised_evidence=2.0)
    assert weak.heatmap_source == "supervised" and weak.heatmap.max() == pytest.approx(0.1)
    strong = decide(0.8, THRESHOLDS, TYPES, supervised, reference, reference_evidence=3.0,
                    supervised_evidence=0.5)
    assert strong.heatmap_source == "supervised+reference"
    assert strong.heatmap[1, 2] == pytest.approx(0.9) and strong.heatmap[0, 0] == pytest.approx(0.1)
    assert "reference" in strong.reason


def test_a_score_outside_zero_one_is_refused():
    with pytest.raises(ValueError):
        decide(1.5, THRESHOLDS, TYPES, HEAT)
