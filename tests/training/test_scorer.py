"""The supervised scorer: ImageNet backbone, ONNX parity at two sizes, training, resume."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from engines.manifest import verify_model
from engines.preprocess import read_rgb, resize_square, to_tensor
from engines.runtime import OnnxRuntimeSession, load_model
from engines.scoring import SupervisedScorer
from engines.taxonomy import DEFECT_TYPES
from training.efficientnet_lite import EfficientNetLite0, imagenet_weights_path, load_imagenet_lite0
from training.scorer.data import load_samples
from training.scorer.evaluation import auroc, average_precision, recall_at_fpr
from training.scorer.export import export_scorer_onnx
from training.scorer.model import OUTPUT_NAMES, DefectScorer
from training.scorer.train import ScorerOptions, scorer_losses, train_scorer
from training.synth import generate_dataset

# ONNX Runtime vs PyTorch on the same input: float rounding only. Probabilities lie in
# [0, 1]; the features are unbounded activations of size O(1..10), hence their looser bound.
PROBABILITY_ATOL = 1e-4
FEATURE_ATOL = 1e-3


@pytest.fixture(scope="module")
def backbone() -> EfficientNetLite0:
    return load_imagenet_lite0().eval()


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scorer-data")
    generate_dataset(root, items=4, seed=5, workers=1, write_frames=False)
    return root


def _sample_image(name: str) -> np.ndarray:
    sklearn = pytest.importorskip("sklearn")
    path = Path(sklearn.__file__).parent / "datasets" / "images" / name
    if not path.is_file():
        pytest.skip(f"{path} not installed")
    image = read_rgb(str(path))
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return resize_square(image[top:top + side, left:left + side], 224)


def test_imagenet_weights_load_strictly_and_recognise_pictures(backbone):
    state = torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True)
    fresh = EfficientNetLite0()
    fresh.load_state_dict(state, strict=True)
    assert set(fresh.state_dict()) == set(state)
    for name, tensor in fresh.state_dict().items():
        assert torch.equal(tensor, state[name]), name
    images = np.stack([_sample_image("china.jpg"), _sample_image("flower.jpg")])
    with torch.no_grad():
        logits = backbone(torch.from_numpy(to_tensor(images)))
    assert logits.shape == (2, 1000)
    top5 = logits.topk(5, dim=1).indices.tolist()
    # ImageNet classes: 442 bell cote, 483 castle, 497 church, 663 monastery, 698 palace,
    # 832 stupa (the temple photo); 985 daisy (the flower).
    assert set(top5[0]) & {442, 483, 497, 663, 698, 832}
    assert 985 in top5[1]


def test_trunk_features_depend_on_the_image(backbone):
    model = DefectScorer(backbone).eval()
    rng = np.random.default_rng(0)
    images = to_tensor(rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8))
    with torch.no_grad():
        features = model(torch.from_numpy(images))[4]
    assert features.shape == (2, 112, 4, 4)
    assert not torch.allclose(features[0], features[1], atol=1e-2)


def test_trunk_stays_frozen_and_in_eval_mode(backbone):
    model = DefectScorer(backbone).train()
    assert not model.trunk.training
    assert all(not p.requires_grad for p in model.trunk.parameters())
    assert all(p.requires_grad for p in model.top.parameters())


def _randomise_batch_norm(model: torch.nn.Module) -> None:
    """Non-trivial statistics in the trained part, as after training."""
    with torch.no_grad():
        for module in model.top.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)


def test_onnx_runtime_matches_pytorch_at_two_sizes(backbone, tmp_path):
    torch.manual_seed(0)
    model = DefectScorer(backbone).eval()
    _randomise_batch_norm(model)
    path = export_scorer_onnx(model, tmp_path / "scorer.onnx", 64)
    rng = np.random.default_rng(1)
    with OnnxRuntimeSession(path, threads=1) as session:
        for size in (64, 96):   # H and W are dynamic: one file, two sizes
            batch = to_tensor(rng.integers(0, 256, (2, size, size, 3), dtype=np.uint8))
            with torch.no_grad():
                outputs = model(torch.from_numpy(batch))
            expected = dict(zip(OUTPUT_NAMES, (t.numpy() for t in outputs)))
            got = session.run({"image": batch})
            assert got["p_types"].shape == (2, len(DEFECT_TYPES))
            assert got["heatmap"].shape == (2, 1, size // 8, size // 8)
            assert got["features"].shape == (2, 112, size // 16, size // 16)
            for name in ("p_any", "p_major", "p_types", "heatmap"):
                assert got[name].shape == expected[name].shape
                np.testing.assert_allclose(got[name], expected[name], atol=PROBABILITY_ATOL, rtol=0,
                                           err_msg=name)
            np.testing.assert_allclose(got["features"], expected["features"], atol=FEATURE_ATOL,
                                       rtol=1e-4)


def test_heatmap_learns_without_masks_through_p_any(backbone):
    """No mask: the heatmap loss is zero, yet P(any)'s loss reaches the heatmap layer."""
    torch.manual_seed(0)
    model = DefectScorer(backbone).train()
    images = torch.from_numpy(to_tensor(np.random.default_rng(2).integers(0, 256, (2, 64, 64, 3),
                                                                          dtype=np.uint8)))
    stride8, stride16 = model.trunk(images)
    logits, heat_logits = model.top(stride8, stride16)
    labels = torch.tensor([[1.0, 0.0] + [0.0] * 7, [0.0] * 9])
    terms = scorer_losses(logits, heat_logits, labels, torch.zeros_like(heat_logits),
                          torch.tensor([False, False]))
    assert float(terms["heatmap"]) == 0.0
    terms["any"].backward()
    assert model.top.heatmap_logit.weight.grad.abs().sum() > 0


def test_metrics_agree_with_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    labels = rng.random(300) < 0.3
    scores = np.round(rng.random(300) + 0.4 * labels, 2)   # rounded: ties happen
    assert average_precision(labels, scores) == pytest.approx(
        metrics.average_precision_score(labels, scores), abs=1e-9)
    assert auroc(labels, scores) == pytest.approx(metrics.roc_auc_score(labels, scores), abs=1e-9)
    fpr, tpr, _ = metrics.roc_curve(labels, scores)
    assert recall_at_fpr(labels, scores, 0.01) == pytest.approx(tpr[fpr <= 0.01].max())


def test_samples_use_labelled_references_and_masks_only_where_known(tiny_dataset, tmp_path):
    samples = load_samples(tiny_dataset, "train", 64)
    queries = pq.read_table(tiny_dataset / "query-train.parquet").num_rows
    references = pq.read_table(tiny_dataset / "reference-train.parquet").num_rows
    assert len(samples) == queries + references
    assert samples.images.shape == (len(samples), 64, 64, 3)
    assert samples.heat_targets.shape == (len(samples), 8, 8)
    defective = samples.labels[:, 0] > 0
    assert samples.has_mask.all()
    assert (samples.heat_targets[~defective] == 0).all()
    assert samples.heat_targets[defective].max() > 0

    # The real layout: no defect-mask column, unlabelled references.
    real = tmp_path / "real"
    shutil.copytree(tiny_dataset, real)
    table = pq.read_table(real / "query-train.parquet")
    pq.write_table(table.drop(["defect_mask"]), real / "query-train.parquet")
    references_table = pq.read_table(real / "reference-train.parquet")
    pq.write_table(references_table.select(["item_identifier", "reference_image", "reference_crop",
                                            "reference_mask"]), real / "reference-train.parquet")
    real_samples = load_samples(real, "train", 64)
    assert len(real_samples) == queries
    assert not real_samples.has_mask.any()


def test_training_resumes_after_an_interruption_and_exports_a_verified_model(tiny_dataset,
                                                                           tmp_path):
    options = ScorerOptions(size=64, epochs=2, batch_size=4, seed=0, device="cpu")
    out = tmp_path / "run"

    def interrupt_in_second_epoch(done, total, note):
        if note.startswith("epoch 2/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_scorer(tiny_dataset, out, options, progress=interrupt_in_second_epoch)
    assert (out / "scorer.ckpt").is_file()
    assert not (out / "scorer.onnx").exists()
    after_first = torch.load(out / "scorer.ckpt", weights_only=False)["history"]
    assert [entry["epoch"] for entry in after_first] == [1]

    steps = []
    result = train_scorer(tiny_dataset, out, options,
                          progress=lambda done, total, note: steps.append(note))
    assert [entry["epoch"] for entry in result["history"]] == [1, 2]
    np.testing.assert_equal(result["history"][0], after_first[0])   # NaN-aware: tiny splits
    assert steps and all(note.startswith("epoch 2/") for note in steps)
    with pytest.raises(ValueError, match="other options"):
        train_scorer(tiny_dataset, out, ScorerOptions(**{**options.__dict__, "fpn_channels": 32}))

    manifest = verify_model(out / "scorer.onnx")
    assert manifest.task == "scorer"
    assert manifest.inputs[0].size == (64, 64)
    assert [o.name for o in manifest.outputs] == list(OUTPUT_NAMES)
    with load_model(out / "scorer.onnx", runtime="onnxruntime", threads=1) as session:
        scorer = SupervisedScorer(session)
        tray = np.random.default_rng(4).integers(0, 256, (300, 300, 3), dtype=np.uint8)
        score = scorer.score(tray)
        assert 0.0 <= score.p_any <= 1.0 and list(score.p_types) == list(DEFECT_TYPES)
        assert score.heatmap.shape == (8, 8)
        assert scorer.embed(tray, 96).shape == (112, 6, 6)


def test_extra_data_sets_add_their_train_splits(tiny_dataset, tmp_path_factory, tmp_path):
    """``extra_train``: every training image of both data sets is learnt from; the
    manifest names the extra data; validation stays the first data set's."""
    extra = tmp_path_factory.mktemp("scorer-extra")
    generate_dataset(extra, items=3, seed=6, workers=1, write_frames=False)
    expected = len(load_samples(tiny_dataset, "train", 64)) + len(load_samples(extra, "train", 64))
    options = ScorerOptions(size=64, epochs=1, batch_size=4, seed=0, device="cpu")
    result = train_scorer(tiny_dataset, tmp_path / "run", options, extra_train=[extra])
    assert result["training_samples"] == expected > len(load_samples(tiny_dataset, "train", 64))
    manifest = verify_model(tmp_path / "run" / "scorer.onnx")
    assert str(extra) in manifest.training_data.description
    assert f"{expected} training images" in manifest.training_data.description
    with pytest.raises(ValueError, match="other options"):   # a resume must use the same data
        train_scorer(tiny_dataset, tmp_path / "run", options)


def test_seeds_sharing_a_cache_run_the_trunk_once(tiny_dataset, tmp_path):
    """An ensemble's members differ only in the seed: the unaugmented trunk features do not
    depend on it, so the second member reads them back instead of recomputing them."""
    cache = tmp_path / "shared-cache"
    passes: dict[int, int] = {}
    for seed in (0, 3):
        options = ScorerOptions(size=64, epochs=1, batch_size=4, seed=seed, device="cpu")
        train_scorer(tiny_dataset, tmp_path / f"seed{seed}", options, cache_dir=cache,
                     trunk_progress=lambda done, total, seed=seed: passes.__setitem__(
                         seed, passes.get(seed, 0) + 1))
        assert (tmp_path / f"seed{seed}" / "scorer.onnx").is_file()
    assert passes.get(0, 0) > 0 and passes.get(3, 0) == 0
    assert not (tmp_path / "seed3" / "cache").exists()


def test_train_command_refuses_extra_data_for_the_segmenter(tiny_dataset, tmp_path, capsys):
    from station_app.cli import main
    assert main(["train", "segmenter", "--data", str(tiny_dataset), "--out", str(tmp_path),
                 "--extra-train", str(tiny_dataset)]) == 1
    assert "--extra-train is for the scorer" in capsys.readouterr().err


def test_item_samples_are_the_station_crop_with_the_defect_mask_cut_alike(tiny_dataset):
    from engines.dataset import read_split
    from engines.item_crop import cut_square, item_box
    from engines.preprocess import read_mask, read_rgb, resize_square
    from training.scorer.data import heat_target

    samples = load_samples(tiny_dataset, "train", 64, region="item", include_references=False)
    split = read_split(tiny_dataset, "train", check_files=False)
    defective = 0
    for index, query in enumerate(split.queries):
        tray = read_rgb(str(split.path(query.query_image)))
        box = item_box(read_mask(str(split.path(query.query_mask))))
        np.testing.assert_array_equal(samples.images[index],
                                      resize_square(cut_square(tray, box), 64))
        if query.defect:
            defective += 1
            expected = heat_target(cut_square(read_mask(
                str(split.path(query.extra["defect_mask"]))), box), 8)
            np.testing.assert_array_equal(samples.heat_targets[index], expected)
            assert expected.max() > 0
    assert defective and samples.has_mask.all()
    tray_samples = load_samples(tiny_dataset, "train", 64, include_references=False)
    assert not np.array_equal(samples.images, tray_samples.images)


def test_the_train_command_names_an_item_scorer_and_its_manifest_says_so(tiny_dataset,
                                                                         tmp_path, capsys):
    from station_app.cli import main
    assert main(["train", "scorer", "--region", "item", "--data", str(tiny_dataset),
                 "--out", str(tmp_path), "--epochs", "1", "--size", "64"]) == 0
    manifest = verify_model(tmp_path / "item_scorer.onnx")
    assert manifest.name == "item_scorer"
    assert "item crop" in manifest.training_data.description
    shown = capsys.readouterr().err          # each long step has its own progress line
    for step in ("prepare images", "trunk features", "train scorer"):
        assert any(line.startswith(step) and " 100% " in line
                   for line in shown.splitlines()), (step, shown)


def test_train_command_refuses_a_region_for_the_segmenter(tiny_dataset, tmp_path, capsys):
    from station_app.cli import main
    assert main(["train", "segmenter", "--data", str(tiny_dataset), "--out", str(tmp_path),
                 "--region", "item"]) == 1
    assert "--region, --name and --cache are for the scorer" in capsys.readouterr().err


def test_an_ensemble_of_seeds_exports_the_mean_logit_on_one_trunk(tiny_dataset, tmp_path):
    from training.scorer.ensemble import load_members, main as ensemble_main
    from training.scorer.model import ScorerTop

    options = ScorerOptions(size=64, epochs=1, batch_size=4, device="cpu")
    runs = []
    for seed in (0, 1):
        train_scorer(tiny_dataset, tmp_path / f"seed{seed}", ScorerOptions(
            **{**options.__dict__, "seed": seed}))
        runs.append(tmp_path / f"seed{seed}" / "scorer.ckpt")
    out = tmp_path / "ensemble" / "scorer.onnx"
    assert ensemble_main([*map(str, runs), "--data", str(tiny_dataset), "--out", str(out)]) == 0
    manifest = verify_model(out)
    assert "2 tops trained with seeds 0, 1" in manifest.training_data.description

    # ONNX Runtime's P(any) = sigmoid of the mean of the two members' logits (PyTorch).
    image = resize_square(_sample_image("china.jpg"), 64)
    tensor = torch.from_numpy(to_tensor(image[None]))
    backbone = load_imagenet_lite0()
    ensemble, _ = load_members(runs)
    with torch.no_grad():
        stride8, stride16 = ensemble.trunk(tensor)
        logits = []
        for run in runs:
            top = ScorerTop(backbone)
            top.load_state_dict(torch.load(run, weights_only=False)["best"]["state"])
            logits.append(top.eval()(stride8, stride16)[0][0, 0])
    expected = torch.sigmoid(torch.stack(logits).mean()).item()
    with load_model(out, runtime="onnxruntime", threads=1) as session:
        assert SupervisedScorer(session).score(image).p_any == pytest.approx(
            expected, abs=PROBABILITY_ATOL)
    assert not np.isclose(torch.sigmoid(logits[0]).item(), expected, atol=PROBABILITY_ATOL)

    other = tmp_path / "other"
    train_scorer(tiny_dataset, other, ScorerOptions(**{**options.__dict__, "fpn_channels": 32}))
    with pytest.raises(ValueError, match="only the seed, epochs and device may differ"):
        load_members([runs[0], other / "scorer.ckpt"])
    with pytest.raises(ValueError, match="only the seed, epochs, device and size may differ"):
        load_members([runs[0], other / "scorer.ckpt"], mixed_sizes=True)


def test_members_trained_at_different_sizes_need_the_serving_size(tiny_dataset, tmp_path,
                                                                  capsys):
    from training.scorer.ensemble import main as ensemble_main

    runs = []
    for size in (64, 96):
        train_scorer(tiny_dataset, tmp_path / f"size{size}", ScorerOptions(
            size=size, epochs=1, batch_size=4, device="cpu"))
        runs.append(str(tmp_path / f"size{size}" / "scorer.ckpt"))
    out = tmp_path / "ensemble" / "scorer.onnx"
    assert ensemble_main([*runs, "--data", str(tiny_dataset), "--out", str(out)]) == 1
    assert "need --size" in capsys.readouterr().err and not out.exists()
    assert ensemble_main([*runs, "--data", str(tiny_dataset), "--out", str(out),
                          "--size", "100"]) == 1
    assert "multiple of 32" in capsys.readouterr().err
    assert ensemble_main([*runs, "--data", str(tiny_dataset), "--out", str(out),
                          "--size", "96"]) == 0
    manifest = verify_model(out)
    assert manifest.inputs[0].size == (96, 96)
    assert "seeds 0, 0 at 64, 96 px" in manifest.training_data.description
    assert ensemble_main([runs[0], runs[0], "--data", str(tiny_dataset), "--out", str(out),
                          "--size", "96"]) == 0        # one training size, served at another
    assert "seeds 0, 0 at 64, 64 px" in verify_model(out).training_data.description
    with load_model(out, runtime="onnxruntime", threads=1) as session:
        scorer = SupervisedScorer(session)
        assert scorer.trained_size == 96
        assert 0.0 <= scorer.score(_sample_image("china.jpg")).p_any <= 1.0


def test_large_weights_stored_as_float16_shrink_the_file_and_keep_the_trunk_exact(tmp_path):
    """float16 storage for the big weights of the trained top, float32 for the frozen
    trunk's (the reference banks' features must not move)."""
    import shutil as _shutil
    from training.onnx_export import store_large_weights_as_float16

    torch.manual_seed(0)
    full = export_scorer_onnx(DefectScorer(load_imagenet_lite0()), tmp_path / "full.onnx", 64)
    half = tmp_path / "half.onnx"
    _shutil.copy(full, half)
    assert store_large_weights_as_float16(half) > 0
    assert half.stat().st_size < 0.75 * full.stat().st_size
    image = to_tensor(resize_square(_sample_image("china.jpg"), 64)[None])
    with OnnxRuntimeSession(full) as a, OnnxRuntimeSession(half) as b:
        expected, got = a.run({"image": image}), b.run({"image": image})
    np.testing.assert_array_equal(got["features"], expected["features"])
    np.testing.assert_allclose(got["p_any"], expected["p_any"], atol=1e-3)
    assert not np.array_equal(got["p_types"], expected["p_types"])   # the top did change
