"""Tiny real ONNX models (built with onnx.helper) and their manifests, for runtime tests.

Not fakes of anything: they are genuine ONNX files small enough to run in milliseconds,
with a numpy reference so the tests can check outputs. They live beside the fakes
because the fake TensorRT executes them too.

The model: ``image`` [N, 3, 8, 8] float32 -> Conv 3x3 (2 filters, pad 1) -> Sigmoid
-> ``heatmap`` [N, 2, 8, 8], and ``score`` [N, 2] = spatial mean of the heatmap.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from engines.manifest import (InputSpec, ModelManifest, OutputSpec, TrainingData,
                              sha256_file, write_manifest)

SIZE = 8
CHANNELS = 3
FILTERS = 2


def conv_weights(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    weight = rng.normal(0, 0.5, (FILTERS, CHANNELS, 3, 3)).astype(np.float32)
    bias = rng.normal(0, 0.1, (FILTERS,)).astype(np.float32)
    return weight, bias


def build_model(batch: int | str = "N", seed: int = 0) -> onnx.ModelProto:
    weight, bias = conv_weights(seed)
    nodes = [
        helper.make_node("Conv", ["image", "W", "B"], ["logits"], pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["logits"], ["heatmap"]),
        helper.make_node("ReduceMean", ["heatmap", "axes"], ["score"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "tiny_conv_sigmoid",
        inputs=[helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                              [batch, CHANNELS, SIZE, SIZE])],
        outputs=[helper.make_tensor_value_info("heatmap", TensorProto.FLOAT,
                                               [batch, FILTERS, SIZE, SIZE]),
                 helper.make_tensor_value_info("score", TensorProto.FLOAT, [batch, FILTERS])],
        initializer=[numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "B"),
                     numpy_helper.from_array(np.array([2, 3], np.int64), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def reference_outputs(image: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """What the model computes, in plain numpy."""
    weight, bias = conv_weights(seed)
    padded = np.pad(image.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    logits = np.zeros((image.shape[0], FILTERS, SIZE, SIZE))
    for dy in range(3):
        for dx in range(3):
            window = padded[:, :, dy:dy + SIZE, dx:dx + SIZE]
            logits += np.einsum("nchw,fc->nfhw", window, weight[:, :, dy, dx])
    heatmap = 1 / (1 + np.exp(-(logits + bias[None, :, None, None])))
    return {"heatmap": heatmap, "score": heatmap.mean(axis=(2, 3))}


def manifest_for(onnx_path: Path, name: str = "tiny", batch: int | str = "N") -> ModelManifest:
    return ModelManifest(
        name=name, version="0.1.0", onnx=onnx_path.name, sha256=sha256_file(onnx_path),
        task="scorer",
        inputs=(InputSpec(name="image", shape=(batch, CHANNELS, SIZE, SIZE), dtype="float32",
                          layout="NCHW", size=(SIZE, SIZE), mean=(0.485, 0.456, 0.406),
                          std=(0.229, 0.224, 0.225), colour_order="RGB"),),
        outputs=(OutputSpec(name="heatmap", shape=(batch, FILTERS, SIZE, SIZE),
                            meaning="per-pixel defect probability"),
                 OutputSpec(name="score", shape=(batch, FILTERS),
                            meaning="mean heatmap per class")),
        training_data=TrainingData(description="none: a test model", dataset_id="test-0"),
        metrics={"AP_any": 0.5}, created="2025-01-01T00:00:00+00:00", notes="test model",
    )


def write_model(directory: Path, name: str = "tiny", batch: int | str = "N",
                seed: int = 0) -> Path:
    """``<name>.onnx`` and its ``<name>.yaml`` manifest in ``directory``; returns the ONNX."""
    directory.mkdir(parents=True, exist_ok=True)
    onnx_path = directory / f"{name}.onnx"
    onnx.save(build_model(batch, seed), str(onnx_path))
    write_manifest(manifest_for(onnx_path, name, batch), onnx_path.with_suffix(".yaml"))
    return onnx_path


def rewrite_model(onnx_path: Path, seed: int) -> None:
    """Replace the ONNX with different weights and update its manifest's sha256."""
    from engines.manifest import load_manifest

    manifest_path = onnx_path.with_suffix(".yaml")
    manifest = load_manifest(manifest_path)
    batch = manifest.inputs[0].shape[0]
    onnx.save(build_model(batch, seed), str(onnx_path))
    write_manifest(replace(manifest, sha256=sha256_file(onnx_path)), manifest_path)


def random_image(batch: int = 1, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((batch, CHANNELS, SIZE, SIZE), np.float32)
