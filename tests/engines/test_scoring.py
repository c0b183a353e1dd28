"""SupervisedScorer against a tiny genuine ONNX model that follows the scorer contract.

The model (built with onnx.helper, no torch) computes things a test can predict:
``p_any`` = sigmoid(mean of the red channel), ``p_major`` = sigmoid(mean of green),
``p_types`` = sigmoid(k · mean of blue) for k = 1..7, ``heatmap`` = sigmoid of the
channel mean averaged over 8×8 cells, ``features`` = 4 channels averaged over 16×16 cells.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from engines.manifest import (InputSpec, ModelManifest, OutputSpec, TrainingData, sha256_file,
                              write_manifest)
from engines.preprocess import IMAGENET_MEAN, IMAGENET_STD, to_tensor
from engines.runtime import load_model
from engines.scoring import SupervisedScore, SupervisedScorer
from engines.taxonomy import DEFECT_TYPES

SIZE = 64
FEATURE_CHANNELS = 4


def _contract_model() -> onnx.ModelProto:
    types_weight = np.zeros((3, len(DEFECT_TYPES)), np.float32)
    types_weight[2] = np.arange(1, len(DEFECT_TYPES) + 1, dtype=np.float32)
    heat_weight = np.full((1, 3, 8, 8), 1.0 / (3 * 64), np.float32)
    feature_weight = np.zeros((FEATURE_CHANNELS, 3, 16, 16), np.float32)
    for channel in range(FEATURE_CHANNELS):
        feature_weight[channel, channel % 3] = (channel + 1) / 256.0
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["pooled4"]),
        helper.make_node("Flatten", ["pooled4"], ["pooled"]),
        helper.make_node("Slice", ["pooled", "s0", "s1", "axis1"], ["red"]),
        helper.make_node("Slice", ["pooled", "s1", "s2", "axis1"], ["green"]),
        helper.make_node("Sigmoid", ["red"], ["p_any"]),
        helper.make_node("Sigmoid", ["green"], ["p_major"]),
        helper.make_node("MatMul", ["pooled", "types_weight"], ["types_logits"]),
        helper.make_node("Sigmoid", ["types_logits"], ["p_types"]),
        helper.make_node("Conv", ["image", "heat_weight"], ["heat_logits"], strides=[8, 8]),
        helper.make_node("Sigmoid", ["heat_logits"], ["heatmap"]),
        helper.make_node("Conv", ["image", "feature_weight"], ["features"], strides=[16, 16]),
    ]
    dims = ["N", 3, "H", "W"]
    graph = helper.make_graph(
        nodes, "scorer_contract",
        inputs=[helper.make_tensor_value_info("image", TensorProto.FLOAT, dims)],
        outputs=[helper.make_tensor_value_info("p_any", TensorProto.FLOAT, ["N", 1]),
                 helper.make_tensor_value_info("p_major", TensorProto.FLOAT, ["N", 1]),
                 helper.make_tensor_value_info("p_types", TensorProto.FLOAT, ["N", 7]),
                 helper.make_tensor_value_info("heatmap", TensorProto.FLOAT, ["N", 1, "h8", "w8"]),
                 helper.make_tensor_value_info("features", TensorProto.FLOAT,
                                               ["N", FEATURE_CHANNELS, "h16", "w16"])],
        initializer=[numpy_helper.from_array(types_weight, "types_weight"),
                     numpy_helper.from_array(heat_weight, "heat_weight"),
                     numpy_helper.from_array(feature_weight, "feature_weight"),
                     numpy_helper.from_array(np.array([0], np.int64), "s0"),
                     numpy_helper.from_array(np.array([1], np.int64), "s1"),
                     numpy_helper.from_array(np.array([2], np.int64), "s2"),
                     numpy_helper.from_array(np.array([1], np.int64), "axis1")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.fixture()
def scorer(tmp_path: Path):
    path = tmp_path / "scorer.onnx"
    onnx.save(_contract_model(), str(path))
    manifest = ModelManifest(
        name="scorer", version="0", onnx=path.name, sha256=sha256_file(path), task="scorer",
        inputs=(InputSpec("image", ("N", 3, "H", "W"), size=(SIZE, SIZE), mean=IMAGENET_MEAN,
                          std=IMAGENET_STD, colour_order="RGB"),),
        outputs=(OutputSpec("p_any", ("N", 1), "any"), OutputSpec("p_major", ("N", 1), "major"),
                 OutputSpec("p_types", ("N", 7), "types"),
                 OutputSpec("heatmap", ("N", 1, "H/8", "W/8"), "heat"),
                 OutputSpec("features", ("N", FEATURE_CHANNELS, "H/16", "W/16"), "features")),
        training_data=TrainingData("none: a test model", "test"))
    write_manifest(manifest, path.with_suffix(".yaml"))
    with load_model(path, runtime="onnxruntime", threads=1) as session:
        yield SupervisedScorer(session, max_batch=2)


def _expected(image: np.ndarray) -> dict[str, np.ndarray]:
    """What the contract model gives for one RGB image already at SIZE."""
    tensor = to_tensor(image)[0].astype(np.float64)
    mean = tensor.mean(axis=(1, 2))
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    cells = tensor.mean(axis=0).reshape(SIZE // 8, 8, SIZE // 8, 8).mean(axis=(1, 3))
    return {"p_any": sigmoid(mean[0]), "p_major": sigmoid(mean[1]),
            "p_types": sigmoid(mean[2] * np.arange(1, 8)), "heatmap": sigmoid(cells)}


def _image(seed: int, size: int = SIZE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def test_score_maps_every_output_to_its_meaning(scorer):
    image = _image(1)
    image[:16, 40:] = 255   # a bright patch: top right of the heatmap must be hottest
    result = scorer.score(image)
    expected = _expected(image)
    assert isinstance(result, SupervisedScore)
    assert result.p_any == pytest.approx(expected["p_any"], abs=1e-5)
    assert result.p_major == pytest.approx(expected["p_major"], abs=1e-5)
    assert list(result.p_types) == list(DEFECT_TYPES)
    np.testing.assert_allclose(list(result.p_types.values()), expected["p_types"], atol=1e-5)
    assert result.heatmap.shape == (SIZE // 8, SIZE // 8) and result.heatmap.dtype == np.float32
    np.testing.assert_allclose(result.heatmap, expected["heatmap"], atol=1e-5)
    assert np.unravel_index(result.heatmap.argmax(), result.heatmap.shape)[0] < 2


def test_tray_images_of_any_size_are_resized_to_the_model_input(scorer):
    small = _image(2)
    large = np.repeat(np.repeat(small, 4, axis=0), 4, axis=1)   # 256², same picture
    a, b = scorer.score(small), scorer.score(large)
    assert b.heatmap.shape == (SIZE // 8, SIZE // 8)
    assert b.p_any == pytest.approx(a.p_any, abs=1e-3)


def test_batches_larger_than_max_batch_give_the_same_scores(scorer):
    images = [_image(seed) for seed in range(5)]
    batched = scorer.score_batch(images)
    single = [scorer.score(image) for image in images]
    assert len(batched) == 5
    for a, b in zip(batched, single):
        assert a.p_any == pytest.approx(b.p_any, abs=1e-6)
        np.testing.assert_allclose(a.heatmap, b.heatmap, atol=1e-6)
    assert len({round(s.p_any, 6) for s in batched}) == 5


def test_embed_runs_the_model_at_the_requested_size(scorer):
    features = scorer.embed(_image(3, 100), 96)
    assert features.shape == (FEATURE_CHANNELS, 6, 6) and features.dtype == np.float32
    batch = scorer.embed_batch([_image(3, 100), _image(4, 100), _image(5, 100)], 32)
    assert batch.shape == (3, FEATURE_CHANNELS, 2, 2)
    assert not np.allclose(batch[0], batch[1])
    with pytest.raises(ValueError, match="multiple of 32"):
        scorer.embed(_image(3), 50)


def test_likely_types_orders_by_probability():
    score = SupervisedScore(0.9, 0.2, {name: 0.1 for name in DEFECT_TYPES} | {
        "spillage": 0.7, "penetration": 0.95}, np.zeros((2, 2), np.float32))
    assert score.likely_types() == ["penetration", "spillage"]
    assert score.likely_types(0.8) == ["penetration"]


@pytest.mark.parametrize("views", [2, 4])
def test_mirrored_views_are_mirrored_back_before_averaging(scorer, views):
    """Each view's heatmap is flipped back: the hot corner stays where it is (unmirrored, it
    would be smeared into the mirrored corners)."""
    image = _image(6)
    image[:16, 40:] = 255
    single = SupervisedScorer(scorer.session, views=1).score(image)
    several = SupervisedScorer(scorer.session, views=views).score(image)
    np.testing.assert_allclose(several.heatmap, single.heatmap, atol=1e-5)
    assert several.p_any == pytest.approx(single.p_any, abs=1e-5)


def test_every_view_is_scored_in_the_batch(scorer, monkeypatch):
    fed = []
    run = scorer.session.run
    monkeypatch.setattr(scorer.session, "run", lambda feeds: fed.append(
        len(feeds["image"])) or run(feeds))
    SupervisedScorer(scorer.session, max_batch=8, views=4).score_batch([_image(7), _image(8)])
    assert sum(fed) == 8


def test_view_probabilities_are_averaged_as_logits_and_views_are_checked(scorer):
    from engines.scoring import mean_probability
    assert mean_probability(np.array([0.9, 0.5])) == pytest.approx(0.75)
    assert mean_probability(np.array([0.3], np.float32)) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="views"):
        SupervisedScorer(scorer.session, views=3)


@pytest.mark.parametrize("views", [1, 4])
def test_warm_up_scores_the_serving_shape_with_every_view(scorer, monkeypatch, views):
    from engines.runtime.base import WARM_UP_RUNS
    fed = []
    run = scorer.session.run
    monkeypatch.setattr(scorer.session, "run", lambda feeds: fed.append(
        feeds["image"].shape) or run(feeds))
    SupervisedScorer(scorer.session, max_batch=8, size=2 * SIZE, views=views).warm_up()
    assert fed == [(views, 3, 2 * SIZE, 2 * SIZE)] * WARM_UP_RUNS


def test_second_look_weighs_as_much_as_the_views_together(scorer, monkeypatch):
    """Two mirrored views at SIZE (logits 1 and 3 by this stand-in's rule) and one look at
    2·SIZE (logit 6): the views' mean (2) and the second look are averaged, sigmoid(4), not
    the three looks (sigmoid(10/3)). The heatmap stays on the first size's grid, the mean of
    the views' and the second look's brought down to it."""
    from engines.scoring import mean_probability
    run = scorer.session.run

    def run_with_known_logits(feeds):
        out = dict(run(feeds))
        count, size = feeds["image"].shape[0], feeds["image"].shape[-1]
        logits = (np.array([1.0 + 2.0 * (k % 2) for k in range(count)]) if size == SIZE
                  else np.full(count, 6.0))
        out["p_any"] = (1 / (1 + np.exp(-logits)))[:, None].astype(np.float32)
        return out

    monkeypatch.setattr(scorer.session, "run", run_with_known_logits)
    image = _image(9, 3 * SIZE)
    image[:40, :40] = 255
    views = SupervisedScorer(scorer.session, views=2).score(image)
    second = SupervisedScorer(scorer.session, size=2 * SIZE, views=1).score(image)
    both = SupervisedScorer(scorer.session, views=2, second_size=2 * SIZE).score(image)
    assert both.p_any == pytest.approx(1 / (1 + np.exp(-4.0)), abs=1e-6)
    assert both.p_major == pytest.approx(mean_probability(np.array([views.p_major,
                                                                    second.p_major])))
    assert both.heatmap.shape == views.heatmap.shape == (SIZE // 8, SIZE // 8)
    brought_down = second.heatmap.reshape(SIZE // 8, 2, SIZE // 8, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(both.heatmap, (views.heatmap + brought_down) / 2, atol=1e-6)
    assert not np.allclose(views.heatmap, brought_down, atol=1e-3)   # the looks differ


def test_second_size_is_checked_and_warmed_up(scorer, monkeypatch):
    from engines.runtime.base import WARM_UP_RUNS
    with pytest.raises(ValueError, match="second input size 50 must be 0"):
        SupervisedScorer(scorer.session, second_size=50)
    assert SupervisedScorer(scorer.session, second_size=0).second_size == 0
    fed = []
    run = scorer.session.run
    monkeypatch.setattr(scorer.session, "run", lambda feeds: fed.append(
        feeds["image"].shape) or run(feeds))
    SupervisedScorer(scorer.session, views=2, second_size=2 * SIZE).warm_up()
    assert fed == [(2, 3, SIZE, SIZE), (1, 3, 2 * SIZE, 2 * SIZE)] * WARM_UP_RUNS
