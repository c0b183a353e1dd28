"""Label statistics of the synthetic generator, checked on plans (no pixels, so many items)."""

from __future__ import annotations

from collections import Counter

import pytest

from engines.taxonomy import DEFECT_TYPES, MATERIALS
from training.synth.dataset import assign_splits
from training.synth.plan import plan_item

ITEMS = 1500


@pytest.fixture(scope="module")
def plans():
    return [plan_item(11, index) for index in range(ITEMS)]


def test_every_material_occurs(plans):
    assert set(p.identity.material for p in plans) == set(MATERIALS)


def test_every_defect_type_occurs_with_both_severities(plans):
    seen = {(d.type, d.severity) for p in plans for c in p.captures for d in c.defects}
    assert seen == {(t, s) for t in DEFECT_TYPES for s in ("minor", "major")}


def test_about_thirty_percent_of_queries_defective(plans):
    queries = [q for p in plans for q in p.queries]
    rate = sum(q.defective for q in queries) / len(queries)
    # ~4500 queries: a binomial standard error of ~0.7 %, so ±3 % is > 4 sigma
    assert 0.27 < rate < 0.33, rate
    assert any(len(q.defects) == 2 for q in queries)


def test_about_one_in_ten_references_defective(plans):
    references = [r for p in plans for r in p.references]
    rate = sum(r.defective for r in references) / len(references)
    assert 0.07 < rate < 0.13, rate


def test_capture_counts_per_item(plans):
    assert Counter(len(p.queries) for p in plans).keys() == {1, 2, 3, 4, 5}
    assert Counter(len(p.references) for p in plans).keys() == {1, 2, 3}


def test_missing_unit_only_on_unit_bearing_items_and_never_on_references(plans):
    for plan in plans:
        for capture in plan.captures:
            if "missing_unit" in capture.defect_types:
                assert plan.identity.has_units and capture.kind == "query"


def test_lookalikes_occur_and_are_non_defective_labels(plans):
    kinds = Counter(name for p in plans for c in p.captures for name in c.lookalikes)
    assert set(kinds) == {"printed_hole", "printed_spill", "sticker", "scuff", "dust"}
    clean_lookalikes = [c for p in plans for c in p.queries if c.lookalikes and not c.defective]
    assert len(clean_lookalikes) > 100


def test_identifiers_and_capture_ids_unique(plans):
    identifiers = [p.identity.identifier for p in plans]
    assert len(set(identifiers)) == len(identifiers)
    assert all(len(i) == 13 and i.isdigit() for i in identifiers)
    capture_ids = [c.capture_id for p in plans for c in p.captures]
    assert len(set(capture_ids)) == len(capture_ids)


def test_plans_are_deterministic_per_seed():
    assert plan_item(3, 7) == plan_item(3, 7)
    assert plan_item(3, 7) != plan_item(4, 7)


def test_splits_are_about_70_15_15_and_never_empty():
    counts = Counter(assign_splits(100, 0))
    assert counts == {"train": 70, "validation": 15, "test": 15}
    assert Counter(assign_splits(3, 0)) == {"train": 1, "validation": 1, "test": 1}
    with pytest.raises(ValueError):
        assign_splits(2, 0)
