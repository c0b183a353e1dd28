"""Segmenter training, checkpoint resume, ONNX export parity, and the runtime side."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engines.manifest import load_manifest, verify_model
from engines.preprocess import to_tensor
from engines.runtime import load_model
from engines.segmentation import ItemSegmenter, mask_iou
from training.onnx_export import export_onnx
from training.segmenter.train import SegmenterOptions, train_segmenter
from training.synth import generate_dataset
from training.unet import UNet

# ONNX Runtime and PyTorch differ by float rounding only; logits are O(1..10).
PARITY_ATOL = 1e-4


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("seg-data")
    generate_dataset(root, items=4, seed=5, workers=1, write_frames=False)
    return root


def test_onnx_runtime_matches_pytorch(tmp_path):
    torch.manual_seed(0)
    model = UNet(base=8, depth=3).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, as after training
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    path = export_onnx(model, torch.zeros(1, 3, 64, 64), tmp_path / "unet.onnx", "image",
                       ["item_logits"])
    images = np.random.default_rng(1).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    batch = to_tensor(images)
    with torch.no_grad():
        expected = model(torch.from_numpy(batch)).numpy()
    from engines.runtime import OnnxRuntimeSession
    with OnnxRuntimeSession(path, threads=1) as session:
        got = session.run({"image": batch})["item_logits"]
    assert got.shape == (3, 1, 64, 64)
    np.testing.assert_allclose(got, expected, atol=PARITY_ATOL, rtol=0)


def test_training_resumes_after_an_interruption_and_exports_a_verified_model(tiny_dataset,
                                                                           tmp_path):
    options = SegmenterOptions(size=64, base=8, depth=3, epochs=2, batch_size=4, seed=0,
                               device="cpu")
    out = tmp_path / "run"

    def interrupt_in_second_epoch(done, total, note):
        if note.startswith("epoch 2/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_segmenter(tiny_dataset, out, options, progress=interrupt_in_second_epoch)
    assert (out / "segmenter.ckpt").is_file()
    assert not (out / "segmenter.onnx").exists()
    after_first = torch.load(out / "segmenter.ckpt", weights_only=False)["history"]
    assert [entry["epoch"] for entry in after_first] == [1]

    steps = []
    result = train_segmenter(tiny_dataset, out, options,
                             progress=lambda done, total, note: steps.append(note))
    assert [entry["epoch"] for entry in result["history"]] == [1, 2]
    assert result["history"][0] == after_first[0]
    assert steps and all(note.startswith("epoch 2/") for note in steps)

    manifest = verify_model(out / "segmenter.onnx")
    assert manifest.task == "segmenter"
    assert manifest.inputs[0].size == (64, 64)
    with pytest.raises(ValueError, match="other options"):
        train_segmenter(tiny_dataset, out, SegmenterOptions(**{**options.__dict__, "base": 4}))

    with load_model(out / "segmenter.onnx", runtime="onnxruntime", threads=1) as session:
        result = ItemSegmenter(session).segment(np.full((2048, 2048, 3), 120, np.uint8))
        assert result.mask.shape == (2048, 2048)
        assert set(np.unique(result.mask)) <= {0, 255}
    assert load_manifest(out / "segmenter.yaml").sha256 == manifest.sha256


def test_mask_iou():
    a = np.zeros((10, 10), np.uint8)
    b = np.zeros((10, 10), np.uint8)
    assert mask_iou(a, b) == 1.0
    a[:5] = 255
    b[:, :5] = 255
    assert mask_iou(a, b) == pytest.approx(25 / 75)
