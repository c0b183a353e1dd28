"""Synthetic tray scenes in the Kaputt layout (numpy + OpenCV only, deterministic per seed)."""

from training.synth.dataset import (
    MARKER_FILE, CaptureImages, SynthSummary, generate_dataset, render_capture,
)

__all__ = ["MARKER_FILE", "CaptureImages", "SynthSummary", "generate_dataset", "render_capture"]
