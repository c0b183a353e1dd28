"""Frames for pypylon's emulated camera when the configuration names none.

The emulator serves image files in sorted order, cycling; a few synthetic 12 MP tray
scenes make the emulated station look like a real one. All of them put the tray at one
pose, as a calibrated station's fixed tray does, and each is checked to pass the station's
own tray check and quality gates, so every capture of the demo ends in a verdict. BMP
because the emulator reads it losslessly and fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from engines.files import write_atomic

GENERATOR_VERSION = 2
# The emulated station's tray pose: mild perspective and rotation, as a real mount gives.
STATION_TRAY_CORNERS = np.array([[742.0, 171.0], [3385.0, 128.0], [3431.0, 2812.0],
                                 [781.0, 2851.0]], np.float32)
def _marker(folder: Path) -> Path:
    """Beside the folder, not in it: the emulator tries to load every file it holds."""
    return folder.with_name(folder.name + ".json")


def _marker_matches(folder: Path, count: int, seed: int) -> bool:
    try:
        marker = json.loads(_marker(folder).read_text())
    except (OSError, ValueError):
        return False
    return marker == {"version": GENERATOR_VERSION, "count": count, "seed": seed}


def ensure_emulator_frames(folder: Path, count: int = 6, seed: int = 2024,
                           max_attempts: int = 40) -> Path:
    """Write ``count`` synthetic frames that pass the station's checks into ``folder``,
    unless it already holds this generator's frames."""
    if _marker_matches(folder, count, seed):
        return folder
    from engines.item_extraction import ItemExtractor
    from engines.runtime import load_model
    from engines.segmentation import ItemSegmenter
    from engines.tray_geometry import TrayGeometry
    from station_app.models import BUNDLED_MODELS
    from training.synth import render_capture  # numpy + OpenCV only; no torch
    from training.synth.plan import plan_item

    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.bmp"):
        stale.unlink()
    geometry = TrayGeometry.from_array(STATION_TRAY_CORNERS)
    written = 0
    with load_model(BUNDLED_MODELS / "segmenter.onnx", runtime="onnxruntime") as session:
        extractor = ItemExtractor(geometry, ItemSegmenter(session))
        for index in range(max_attempts):
            if written == count:
                break
            plan = plan_item(seed, index)
            # Alternate good and damaged items, so the demo shows both kinds of verdict.
            want_defect = written % 2 == 1
            spec = next((q for q in plan.queries if bool(q.defects) == want_defect), None)
            if spec is None:
                continue
            capture = render_capture(plan.identity, spec, STATION_TRAY_CORNERS)
            if not extractor.from_frame(capture.frame).accepted:
                continue  # too dark, item under the rim, ...: not a frame the demo can use
            temporary = folder / f".frame-{written:02d}.tmp.bmp"
            cv2.imwrite(str(temporary), cv2.cvtColor(capture.frame, cv2.COLOR_RGB2BGR))
            temporary.replace(folder / f"frame-{written:02d}.bmp")
            written += 1
    if written == 0:
        raise RuntimeError(f"no synthetic frame passed the station's checks in {max_attempts} "
                           "attempts")
    write_atomic(_marker(folder), json.dumps({"version": GENERATOR_VERSION, "count": count,
                                              "seed": seed}))
    return folder
