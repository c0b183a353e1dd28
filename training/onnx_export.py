"""ONNX export and manifest writing shared by every model we train."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Mapping, Sequence

import torch

from engines.manifest import (InputSpec, ModelManifest, OutputSpec, TrainingData, sha256_file,
                              write_manifest)

OPSET = 17


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
