"""Reference comparison: caching, pose augmentation, robustness to a defective reference."""

from __future__ import annotations

import numpy as np
import pytest

from engines.reference import (ComparisonSettings, PatchSettings, ReferenceFeatureCache,
                               build_bank, circle_box, compare, content_identity, query_grid,
                               reference_heatmap)
from tests.engines.reference_scenes import add_defect, artwork, scene, trunk_scorer  # noqa: F401

SETTINGS = PatchSettings(embed_size=192)


class CountingEmbedder:
    """Passes through to the scorer and counts trunk calls and images embedded."""

    def __init__(self, scorer) -> None:
        self.scorer, self.calls, self.images = scorer, 0, 0

    def embed_batch(self, images, size):
        self.calls += 1
        self.images += len(images)
        return self.scorer.embed_batch(images, size)


@pytest.fixture(scope="module")
def item():
    good = artwork(seed=3)
    return {"good": good, "defective": add_defect(good, seed=4)}


@pytest.fixture(scope="module")
def banks(trunk_scorer, item):
    scorer, _ = trunk_scorer
    made = {name: build_bank(scorer, *scene(item[kind], angle, seed), SETTINGS)
            for name, kind, angle, seed in (("good_a", "good", 12.0, 1), ("good_b", "good", 101.0, 2),
                                            ("good_c", "good", 215.0, 5),
                                            ("bad", "defective", 40.0, 3))}
    return made


def _score(scorer, image_and_mask, references, settings=ComparisonSettings()):
    return compare(query_grid(scorer, *image_and_mask, SETTINGS), references, settings)


def test_circle_box_does_not_change_when_the_item_turns(item):
    sides = [circle_box(scene(item["good"], angle, 0)[1], 0.12).side for angle in (0, 30, 45, 90)]
    assert max(sides) - min(sides) <= 0.03 * max(sides)


def test_reference_banks_are_embedded_once_and_reused(tmp_path, trunk_scorer, item):
    scorer, sha = trunk_scorer
    counting = CountingEmbedder(scorer)
    references = [scene(item["good"], angle, seed) for angle, seed in ((10, 1), (80, 2))]
    identities = [content_identity(*reference) for reference in references]
    cache = ReferenceFeatureCache(tmp_path, sha, SETTINGS)

    def banks_for_query():
        return [cache.bank(identity, counting, lambda r=reference: r)
                for identity, reference in zip(identities, references)]

    first = banks_for_query()
    assert counting.calls == 2 and cache.computed == 2   # one batched call per reference
    second = banks_for_query()
    assert counting.calls == 2 and cache.computed == 2   # the second query embeds nothing
    np.testing.assert_array_equal(first[0].vectors, second[0].vectors)

    reopened = ReferenceFeatureCache(tmp_path, sha, SETTINGS)
    [reopened.bank(i, counting, lambda r=r: r) for i, r in zip(identities, references)]
    assert reopened.computed == 0 and counting.calls == 2   # read back from disk

    new_model = ReferenceFeatureCache(tmp_path, "0" * 64, SETTINGS)
    [new_model.bank(i, counting, lambda r=r: r) for i, r in zip(identities, references)]
    assert new_model.computed == 2 and counting.calls == 4   # another model: recomputed

    other_settings = ReferenceFeatureCache(tmp_path, sha, PatchSettings(embed_size=192,
                                                                        augmentation="d8"))
    assert other_settings.path(identities[0]) != cache.path(identities[0])


def test_a_corrupt_cache_file_is_recomputed(tmp_path, trunk_scorer, item):
    scorer, sha = trunk_scorer
    reference = scene(item["good"], 10, 1)
    cache = ReferenceFeatureCache(tmp_path, sha, SETTINGS)
    identity = content_identity(*reference)
    cache.bank(identity, scorer, lambda: reference)
    cache.path(identity).write_bytes(b"not an npz")
    cache.bank(identity, scorer, lambda: reference)
    assert cache.computed == 2


def test_pose_augmentation_makes_a_turned_good_reference_look_normal(trunk_scorer, item):
    scorer, _ = trunk_scorer
    reference = scene(item["good"], 20.0, 1)
    turned = scene(item["good"], 20.0 + 90.0 + 45.0, 7)       # another capture, turned
    defective = scene(item["defective"], 20.0 + 90.0 + 45.0, 7)
    augmented = [build_bank(scorer, *reference, SETTINGS)]
    plain = [build_bank(scorer, *reference, PatchSettings(embed_size=192, augmentation="identity"))]
    good = _score(scorer, turned, augmented)
    defect_score = _score(scorer, defective, augmented).score
    assert good.score < 0.5 * defect_score                   # pose alone is far below a defect
    # and the augmentation is what explains the pose: without it the whole item is far
    assert good.baseline < 0.7 * _score(scorer, turned, plain).baseline


def test_one_defective_reference_does_not_hide_a_defect(trunk_scorer, item, banks):
    scorer, _ = trunk_scorer
    query = scene(item["defective"], 163.0, 11)   # the same defect as the bad reference
    good_query = scene(item["good"], 163.0, 11)
    with_bad = [banks["good_a"], banks["good_b"], banks["bad"]]
    robust = _score(scorer, query, with_bad).score
    hidden = _score(scorer, query, with_bad, ComparisonSettings(combination="min")).score
    all_good = _score(scorer, query, [banks["good_a"], banks["good_b"], banks["good_c"]]).score
    good_score = _score(scorer, good_query, with_bad).score
    assert robust > 2.0 * good_score       # still clearly anomalous
    assert robust > 0.7 * all_good         # about as anomalous as with only good references
    assert hidden < robust                 # a plain nearest neighbour would let it hide


def test_one_defective_reference_does_not_flag_a_good_item(trunk_scorer, item, banks):
    scorer, _ = trunk_scorer
    good_query = scene(item["good"], 290.0, 13)
    defect_query = scene(item["defective"], 290.0, 13)
    with_bad = [banks["good_a"], banks["bad"], banks["good_b"]]
    good_with_bad = _score(scorer, good_query, with_bad).score
    good_all_good = _score(scorer, good_query, [banks["good_a"], banks["good_b"],
                                                banks["good_c"]]).score
    defect_score = _score(scorer, defect_query, with_bad).score
    assert good_with_bad < 0.5 * defect_score
    assert good_with_bad < good_all_good + 0.25 * (defect_score - good_all_good)


def test_anomaly_map_points_at_the_defect_on_the_tray(trunk_scorer, item, banks):
    scorer, _ = trunk_scorer
    result = _score(scorer, scene(item["defective"], 0.0, 17),
                    [banks["good_a"], banks["good_b"], banks["good_c"]])
    heat = reference_heatmap(result, tray_size=384, grid_shape=(48, 48),
                             low=result.baseline, high=result.baseline + result.score)
    peak_y, peak_x = np.unravel_index(heat.argmax(), heat.shape)
    # the defect sits at (0.7, 0.35) of the 150×100 item centred at (192, 192), angle 0
    defect_x, defect_y = 192 - 75 + 0.7 * 150, 192 - 50 + 0.35 * 100
    assert abs((peak_x + 0.5) * 8 - defect_x) <= 28 and abs((peak_y + 0.5) * 8 - defect_y) <= 28
    assert heat.max() == pytest.approx(1.0) and heat[0, 0] == 0.0


def test_compare_needs_a_reference(trunk_scorer, item):
    scorer, _ = trunk_scorer
    with pytest.raises(ValueError):
        _score(scorer, scene(item["good"], 0.0, 1), [])
