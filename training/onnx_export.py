"""ONNX export and manifest writing shared by every model we train."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Mapping, Sequence

import torch

from engines.manifest import (InputSpec, ModelManifest, OutputSpec, TrainingData, sha256_file,
                              write_manifest)

OPSET = 17
# Weight tensors at least this large are stored as float16 by ``store_large_weights_as_float16``.
# Above the frozen trunk's largest (112×672 = 75,264 in stage 5): the trunk's generic
# features, which the reference banks are built from, stay exactly float32.
LARGE_WEIGHT_ELEMENTS = 100_000


def export_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path,
                input_name: str, output_names: Sequence[str]) -> Path:
    """Export with a dynamic batch dimension into one self-contained file."""
    model = model.eval().cpu()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.onnx")
    dynamic = {input_name: {0: "N"}, **{name: {0: "N"} for name in output_names}}
    with torch.no_grad():
        torch.onnx.export(model, example.cpu(), str(temporary), input_names=[input_name],
                          output_names=list(output_names), dynamic_axes=dynamic,
                          opset_version=OPSET, dynamo=False)
    temporary.replace(path)
    return path


def write_model_manifest(onnx_path: Path, *, name: str, version: str, task: str,
                         inputs: Sequence[InputSpec], outputs: Sequence[OutputSpec],
                         training_description: str, dataset_id: str,
                         metrics: Mapping[str, float], notes: str = "") -> ModelManifest:
    manifest = ModelManifest(
        name=name, version=version, onnx=onnx_path.name, sha256=sha256_file(onnx_path),
        task=task, inputs=tuple(inputs), outputs=tuple(outputs),
        training_data=TrainingData(description=training_description, dataset_id=dataset_id),
        metrics={key: float(value) for key, value in metrics.items()},
        created=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        notes=notes)
    write_manifest(manifest, onnx_path.with_suffix(".yaml"))
    return manifest


def store_large_weights_as_float16(path: Path, min_elements: int = LARGE_WEIGHT_ELEMENTS) -> int:
    """Store the large float32 weights of an ONNX file as float16, each followed by a Cast
    back to float32: the file nearly halves, compute stays float32 (ONNX Runtime folds
    the casts at load). Small tensors (biases, the early layers) keep full precision.
    Returns how many tensors were converted."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    kept, casts, converted = [], [], 0
    for tensor in graph.initializer:
        if tensor.data_type != TensorProto.FLOAT or np.prod(tensor.dims) < min_elements:
            kept.append(tensor)
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float16),
                                       f"{tensor.name}.float16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [tensor.name], to=TensorProto.FLOAT,
                                      name=f"{tensor.name}.to_float32"))
        converted += 1
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    temporary = path.with_suffix(".tmp.onnx")
    onnx.save(model, str(temporary))
    temporary.replace(path)
    return converted
