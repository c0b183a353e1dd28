"""The committed default scorer: verified, follows the ONNX contract at two input sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engines.runtime import load_model
from engines.scoring import SCORER_OUTPUTS, SupervisedScorer
from engines.taxonomy import DEFECT_TYPES

BUNDLED = Path(__file__).resolve().parents[2] / "engines" / "models" / "scorer.onnx"


@pytest.fixture(scope="module")
def scorer():
    if not BUNDLED.is_file():
        pytest.fail(f"the default scorer {BUNDLED} is missing")
    with load_model(BUNDLED, runtime="onnxruntime", threads=2) as session:
        yield SupervisedScorer(session)


def test_bundled_scorer_manifest_describes_the_contract(scorer):
    manifest = scorer.session.manifest
    assert manifest.task == "scorer"
    assert [o.name for o in manifest.outputs] == list(SCORER_OUTPUTS)
    assert scorer.size % 32 == 0
    assert manifest.inputs[0].colour_order == "RGB"
    assert 0.0 < manifest.metrics["validation_ap_any"] <= 1.0
    assert BUNDLED.stat().st_size < 20 * 2**20   # the repository stays lean


def test_bundled_scorer_scores_trays_and_embeds_crops(scorer):
    rng = np.random.default_rng(0)
    tray = rng.integers(0, 256, (700, 700, 3), dtype=np.uint8)
    score = scorer.score(tray)
    assert 0.0 <= score.p_any <= 1.0 and 0.0 <= score.p_major <= 1.0
    assert list(score.p_types) == list(DEFECT_TYPES)
    assert score.heatmap.shape == (scorer.size // 8, scorer.size // 8)
    assert ((score.heatmap >= 0) & (score.heatmap <= 1)).all()
    crops = [rng.integers(0, 256, (250, 250, 3), dtype=np.uint8) for _ in range(2)]
    features = scorer.embed_batch(crops, 320)
    assert features.shape == (2, 112, 20, 20)
    assert np.isfinite(features).all() and not np.allclose(features[0], features[1])


def test_the_scoring_size_is_chosen_by_the_caller(scorer):
    """``models.score_resolution`` reaches the model: the heatmap grid follows the size
    (stride 8), and a size the network cannot take is refused."""
    tray = np.random.default_rng(1).integers(0, 256, (600, 600, 3), dtype=np.uint8)
    assert scorer.size == scorer.trained_size == 512
    assert scorer.score(tray).heatmap.shape == (64, 64)
    smaller = SupervisedScorer(scorer.session, size=384)
    assert smaller.size == 384 and smaller.trained_size == 512
    assert smaller.score(tray).heatmap.shape == (48, 48)
    with pytest.raises(ValueError, match="multiple of 32"):
        SupervisedScorer(scorer.session, size=500)


ITEM_BUNDLED = BUNDLED.with_name("item_scorer.onnx")


def test_bundled_item_scorer_is_the_same_contract_on_the_item_crop(scorer):
    """Same outputs; trained on item crops (its manifest says so); its frozen trunk is the
    tray scorer's, so its generic features are the ones the reference banks were built
    from (within float rounding)."""
    if not ITEM_BUNDLED.is_file():
        pytest.fail(f"the default item scorer {ITEM_BUNDLED} is missing")
    with load_model(ITEM_BUNDLED, runtime="onnxruntime", threads=2) as session:
        item_scorer = SupervisedScorer(session)
        manifest = session.manifest
        assert manifest.name == "item_scorer" and manifest.task == "scorer"
        assert [o.name for o in manifest.outputs] == list(SCORER_OUTPUTS)
        assert "item crop" in manifest.training_data.description
        # The repository stays lean: every bundled model together, tens of MB at most.
        assert sum(f.stat().st_size for f in BUNDLED.parent.glob("*.onnx")) < 50 * 2**20
        crop = np.random.default_rng(2).integers(0, 256, (400, 400, 3), dtype=np.uint8)
        np.testing.assert_allclose(item_scorer.embed(crop, 320), scorer.embed(crop, 320),
                                   atol=1e-3)
        assert item_scorer.score(crop).p_any != pytest.approx(scorer.score(crop).p_any)


def test_bundled_scorers_have_their_padding_folded():
    """A Pad before a convolution cost ONNX Runtime a copy and two layout changes (40 % of
    the item scorer's CPU time, ``training.fold_pads``); the bundled files have none left."""
    import onnx

    for name in ("scorer.onnx", "item_scorer.onnx"):
        operators = {node.op_type for node in onnx.load(str(BUNDLED.parent / name)).graph.node}
        assert "Conv" in operators and "Pad" not in operators, name
