"""ONNX export of the scorer with dynamic batch, height and width.

Dynamic height and width let one file score the tray at its default size and embed item
crops at another size for the reference comparison (both multiples of 32). The trunk's
"same" padding is folded into its convolutions after the export
(``training.fold_pads``: 1.5× faster on CPU, same outputs).
"""

from __future__ import annotations

from pathlib import Path

import torch

from training.fold_pads import fold_pads_into_convs
from training.onnx_export import OPSET
from training.scorer.model import OUTPUT_NAMES, DefectScorer

INPUT_NAME = "image"


def export_scorer_onnx(model: DefectScorer, path: Path, size: int) -> Path:
    """One self-contained ONNX file (legacy exporter, opset 17, pads folded), written
    atomically."""
    model = model.eval().cpu()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.onnx")
    dynamic = {INPUT_NAME: {0: "N", 2: "H", 3: "W"},
               "p_any": {0: "N"}, "p_major": {0: "N"}, "p_types": {0: "N"},
               "heatmap": {0: "N", 2: "H/8", 3: "W/8"},
               "features": {0: "N", 2: "H/16", 3: "W/16"}}
    with torch.no_grad():
        torch.onnx.export(model, torch.zeros(1, 3, size, size), str(temporary),
                          input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
    fold_pads_into_convs(temporary)
    temporary.replace(path)
    return path
