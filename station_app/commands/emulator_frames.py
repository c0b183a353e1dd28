"""Frames for pypylon's emulated camera when the configuration names none.

The emulator serves image files; a few synthetic 12 MP tray scenes make the emulated
station look like a real one. BMP because the emulator reads it losslessly and fast.
"""

from __future__ import annotations

from pathlib import Path

import cv2


def ensure_emulator_frames(folder: Path, count: int = 3, seed: int = 2024) -> Path:
    """Write ``count`` synthetic frames into ``folder`` unless it already has images."""
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.glob("*.bmp")):
        return folder
    from training.synth import render_capture  # numpy + OpenCV only; no torch
    from training.synth.plan import plan_item

    for index in range(count):
        plan = plan_item(seed, index)
        capture = render_capture(plan.identity, plan.queries[0])
        temporary = folder / f".frame-{index:02d}.tmp.bmp"
        cv2.imwrite(str(temporary), cv2.cvtColor(capture.frame, cv2.COLOR_RGB2BGR))
        temporary.replace(folder / f"frame-{index:02d}.bmp")
    return folder
