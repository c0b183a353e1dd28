"""One capture's scores: the shared path the fusion fit and replay both use."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engines.dataset import read_split
from engines.fusion import FusionModel
from engines.inspection import CaptureInput, Inspector, ReferenceImage, Refused
from engines.item_extraction import ItemExtractor
from engines.preprocess import read_mask, read_rgb
from engines.reference import (ComparisonSettings, PatchSettings, ReferenceFeatureCache, compare,
                               file_identity, query_grid)
from engines.verdict import DecisionThresholds
from tests.engines.reference_scenes import trunk_scorer  # noqa: F401

SETTINGS = PatchSettings(embed_size=128, augmentation="d8")
FUSION = FusionModel(-0.5, {"logit_p_any": 1.0, "reference_score": 2.0, "has_references": 0.3},
                     reference_centre=0.1, reference_scale=0.05)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from training.synth import generate_dataset

    root = tmp_path_factory.mktemp("data")
    generate_dataset(root, items=3, seed=1, workers=1, write_frames=False)
    return root


def _inputs(dataset) -> list[CaptureInput]:
    split = read_split(dataset, "train", check_files=False)

    def load(image, mask):
        return read_rgb(str(split.path(image)), 2), read_mask(str(split.path(mask)), 2)

    return [CaptureInput(*load(q.query_image, q.query_mask), [
        ReferenceImage(file_identity(split.path(r.reference_image), split.path(r.reference_mask)),
                       lambda r=r: load(r.reference_image, r.reference_mask))
        for r in split.references_for(q.item_identifier)]) for q in split.queries]


def test_score_split_gives_what_the_scorer_and_comparison_give_directly(tmp_path, dataset,
                                                                       trunk_scorer):
    """The pre-refactor score_split, written out, against the one built on Inspector."""
    from training.fusion_fit import score_split

    scorer, sha = trunk_scorer
    scored = score_split(dataset, "train", scorer, ReferenceFeatureCache(tmp_path, sha, SETTINGS))
    cache = ReferenceFeatureCache(tmp_path / "direct", sha, SETTINGS)
    for query, capture in zip(scored, _inputs(dataset)):
        direct = scorer.score(capture.tray_image)
        banks = [cache.bank(r.identity, scorer, r.load) for r in capture.references]
        reference = compare(query_grid(scorer, capture.tray_image, capture.mask, SETTINGS), banks,
                            ComparisonSettings()).score
        assert (query.p_any, query.p_major) == (direct.p_any, direct.p_major)
        assert query.p_types == tuple(direct.p_types.values())
        assert query.reference_score == reference


def test_batched_scores_match_single_scores_and_fuse_into_the_verdict(tmp_path, dataset,
                                                                      trunk_scorer):
    scorer, sha = trunk_scorer
    thresholds = DecisionThresholds(0.3, 0.7)
    inspector = Inspector(scorer, ReferenceFeatureCache(tmp_path, sha, SETTINGS), FUSION,
                          thresholds)
    captures = _inputs(dataset)[:3]
    batched = inspector.inspect_batch(captures)
    for capture, together in zip(captures, batched):
        alone = inspector.inspect(capture)
        assert together.p_any == pytest.approx(alone.p_any, abs=1e-5)
        assert together.reference_score == pytest.approx(alone.reference_score, abs=1e-5)
        assert together.fused == pytest.approx(
            FUSION.probability(together.p_any, together.p_major, together.reference_score))
        assert together.verdict.label == thresholds.label(together.fused)
        assert together.heatmap.shape == together.reference_map.shape
        assert {"supervised", "reference"} <= set(together.timings_ms)


def test_without_references_or_supervised_heads(tmp_path, dataset, trunk_scorer):
    scorer, sha = trunk_scorer
    capture = _inputs(dataset)[0]
    cache = ReferenceFeatureCache(tmp_path, sha, SETTINGS)
    alone = Inspector(scorer, cache, FUSION).inspect(CaptureInput(capture.tray_image,
                                                                  capture.mask))
    assert alone.reference_score is None and alone.reference_map is None
    assert alone.verdict is None                                   # no thresholds given
    assert alone.fused == pytest.approx(FUSION.probability(alone.p_any, alone.p_major, None))
    reference_only = Inspector(scorer, cache, supervised=False).inspect(capture)
    assert math.isnan(reference_only.p_any) and reference_only.p_types == {}
    assert reference_only.reference_score is not None


def test_prepared_references_are_cached_once_and_give_the_same_scores(tmp_path, dataset,
                                                                        trunk_scorer,
                                                                        monkeypatch):
    """``prepare_references`` builds only the banks not cached yet (a cached one is neither
    loaded nor read), and a capture after it scores exactly as one that built its banks
    itself."""
    scorer, sha = trunk_scorer
    capture = next(c for c in _inputs(dataset) if c.references)
    prepared = Inspector(scorer, ReferenceFeatureCache(tmp_path / "prepared", sha, SETTINGS),
                         FUSION)
    assert prepared.prepare_references(capture.references) == len(capture.references)

    def unreadable() -> tuple[np.ndarray, np.ndarray]:
        raise AssertionError("a cached reference must not be loaded again")

    def read_back(identity: str):
        raise AssertionError("a cached bank must not be read when preparing")

    monkeypatch.setattr(prepared.cache, "load", read_back)
    again = [ReferenceImage(r.identity, unreadable) for r in capture.references]
    assert prepared.prepare_references(again) == 0
    monkeypatch.undo()
    built = prepared.cache.computed
    result = prepared.inspect(capture)
    assert prepared.cache.computed == built                    # the capture embedded none
    direct = Inspector(scorer, ReferenceFeatureCache(tmp_path / "direct", sha, SETTINGS),
                       FUSION).inspect(capture)
    assert result.reference_score == direct.reference_score
    assert result.fused == direct.fused


class _NeverCalledSegmenter:
    def segment(self, image):
        raise AssertionError("a refused exposure must not reach the segmenter")


def test_segmenter_mode_reports_a_refused_capture_with_its_gate_code(tmp_path, trunk_scorer):
    scorer, sha = trunk_scorer
    extractor = ItemExtractor(None, _NeverCalledSegmenter(), check_alignment=False)
    inspector = Inspector(scorer, ReferenceFeatureCache(tmp_path, sha, SETTINGS),
                          extractor=extractor)
    result = inspector.inspect(CaptureInput(np.zeros((256, 256, 3), np.uint8)))
    assert isinstance(result, Refused) and result.codes == ("under_exposed",)


def test_the_item_scorer_scores_the_item_crop_and_the_fusion_weighs_it(tmp_path, dataset,
                                                                      trunk_scorer):
    """The bundled scorer stands in as item scorer (what matters is where its input and
    output go, not what it learnt)."""
    from engines.fusion import ItemScore
    from engines.item_crop import square_item_crop

    scorer, sha = trunk_scorer
    fusion = FusionModel(-0.5, {"logit_p_any": 0.5, "logit_item_p_any": 1.5,
                                "reference_score": 2.0, "has_references": 0.3},
                         reference_centre=0.1, reference_scale=0.05)
    inspector = Inspector(scorer, ReferenceFeatureCache(tmp_path, sha, SETTINGS), fusion,
                          DecisionThresholds(0.3, 0.7), item_scorer=scorer)
    capture = _inputs(dataset)[0]
    result = inspector.inspect(capture)
    crop, box = square_item_crop(capture.tray_image, capture.mask)
    direct = scorer.score(crop)
    assert result.item_box == box
    assert (result.item.p_any, result.item.p_major) == pytest.approx((direct.p_any,
                                                                      direct.p_major), abs=1e-6)
    assert result.p_any == pytest.approx(scorer.score(capture.tray_image).p_any, abs=1e-6)
    assert result.fused == pytest.approx(fusion.probability(
        result.p_any, result.p_major, result.reference_score, ItemScore(direct.p_any,
                                                                        direct.p_major)))
    assert result.fused != pytest.approx(fusion.probability(result.p_any, result.p_major,
                                                            result.reference_score))
    assert "item_scorer" in result.timings_ms
    tray_only = Inspector(scorer, ReferenceFeatureCache(tmp_path, sha, SETTINGS), fusion)
    assert (result.heatmap >= tray_only.inspect(capture).heatmap - 1e-6).all()

    without_mask = inspector.inspect(CaptureInput(capture.tray_image))
    assert without_mask.item is None and "item_scorer" not in without_mask.timings_ms
    assert without_mask.fused == pytest.approx(fusion.probability(
        without_mask.p_any, without_mask.p_major, None))


def test_score_split_gives_the_item_scorer_the_full_resolution_crop(tmp_path, dataset,
                                                                   trunk_scorer):
    """Trays are read reduced for the tray scorer's sake; the item crop must not be cut
    from such a tray, or the item scorer loses the resolution it exists for."""
    from engines.item_crop import square_item_crop
    from training.fusion_fit import score_split

    scorer, sha = trunk_scorer
    scored = score_split(dataset, "train", scorer, ReferenceFeatureCache(tmp_path, sha, SETTINGS),
                         item_scorer=scorer)
    split = read_split(dataset, "train", check_files=False)
    for query, row in list(zip(split.queries, scored))[:2]:
        tray = read_rgb(str(split.path(query.query_image)))
        crop, _ = square_item_crop(tray, read_mask(str(split.path(query.query_mask))))
        assert row.item_p_any == pytest.approx(scorer.score(crop).p_any, abs=1e-5)


def test_after_warm_up_a_capture_runs_no_shape_the_models_have_not_run(tmp_path, dataset,
                                                                     trunk_scorer, monkeypatch):
    """ONNX Runtime's first runs at a new shape are slow (engines.runtime.base.WARM_UP_RUNS):
    the warm-up must run exactly the shapes the first captures will, both for an item seen
    before (its reference banks cached) and for a new one (banks built in batches)."""
    from engines.runtime.base import WARM_UP_RUNS
    from engines.scoring import SupervisedScorer

    shared, sha = trunk_scorer
    session = shared.session
    # 8 pose transforms (d8) in batches of 3: bank shapes 3 and 2, query shape 1.
    tray_scorer = SupervisedScorer(session, max_batch=3, size=96, views=1)
    item_scorer = SupervisedScorer(session, max_batch=16, size=160, views=2)
    inspector = Inspector(tray_scorer, ReferenceFeatureCache(tmp_path, sha, SETTINGS), FUSION,
                          DecisionThresholds(0.3, 0.7), item_scorer=item_scorer)
    capture = next(c for c in _inputs(dataset) if c.references)
    fed: list[tuple[int, ...]] = []
    run = session.run
    monkeypatch.setattr(session, "run", lambda feeds: fed.append(feeds["image"].shape)
                        or run(feeds))

    timings = inspector.warm_up()
    warmed = list(fed)
    fed.clear()
    inspector.inspect(capture)                        # builds and caches the reference banks
    new_item = list(fed)
    fed.clear()
    inspector.inspect(capture)

    assert set(timings) == {"scorer", "item_scorer", "reference_embedding"}
    assert all(ms > 0 for ms in timings.values())
    assert (3, 3, 128, 128) in new_item and (3, 3, 128, 128) not in fed   # banks built once
    assert set(new_item) <= set(warmed) and fed and set(fed) <= set(warmed)
    assert set(warmed) == {(1, 3, 96, 96), (2, 3, 160, 160),               # tray, item views
                           (1, 3, 128, 128), (3, 3, 128, 128), (2, 3, 128, 128)}  # query, banks
    assert all(warmed.count(shape) >= WARM_UP_RUNS for shape in set(warmed))
