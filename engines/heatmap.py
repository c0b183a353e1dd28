"""Heatmap overlays: a coarse defect-probability map drawn over the tray image.

The scorer's heatmap is coarse (stride 8). It is upsampled with bicubic interpolation so
cell edges do not show, coloured with a perceptual colour map, and given an alpha that
grows with the probability: where the model sees nothing the tray shows through
unchanged, so the operator's eye goes only to the hot spots. The operator window draws it
as an RGBA layer of ``DISPLAY_SIDE``² that the painter scales over the tray
(:func:`heatmap_layer`); the layer is rendered here, without Qt, so that the benchmark
times the rendering the station does (Qt's painting aside).
"""

from __future__ import annotations

import cv2
import numpy as np

# Probabilities below this are drawn fully transparent.
DEFAULT_FLOOR = 0.15
DEFAULT_MAX_ALPHA = 0.65
DISPLAY_SIDE = 512
"""Side of the displayed heatmap layer: far below the tray's 2048², enough for a smooth
picture on any screen once the painter scales it (rendering it at 2048² took ~40 ms)."""


def upsample_heatmap(heatmap: np.ndarray, height: int, width: int) -> np.ndarray:
    """Smoothly resize a probability map to height×width, clipped to [0, 1]."""
    heat = np.asarray(heatmap, np.float32)
    if heat.ndim != 2:
        raise ValueError(f"heatmap must be 2-D, got shape {heat.shape}")
    resized = cv2.resize(heat, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(resized, 0.0, 1.0)


def colourise(probability: np.ndarray, colour_map: int = cv2.COLORMAP_INFERNO) -> np.ndarray:
    """Probability map H×W in [0, 1] → RGB uint8 H×W×3."""
    levels = np.round(np.clip(probability, 0.0, 1.0) * 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(levels, colour_map), cv2.COLOR_BGR2RGB)


def overlay_alpha(probability: np.ndarray, floor: float = DEFAULT_FLOOR,
                  max_alpha: float = DEFAULT_MAX_ALPHA) -> np.ndarray:
    """Per-pixel opacity: 0 below ``floor``, rising linearly to ``max_alpha`` at 1."""
    ramp = (np.asarray(probability, np.float32) - floor) / max(1e-6, 1.0 - floor)
    return np.clip(ramp, 0.0, 1.0) * max_alpha


def heatmap_rgba(heatmap: np.ndarray, height: int, width: int, floor: float = DEFAULT_FLOOR,
                 max_alpha: float = DEFAULT_MAX_ALPHA) -> np.ndarray:
    """The overlay alone as RGBA uint8 H×W×4 (for a UI layer or a PNG)."""
    probability = upsample_heatmap(heatmap, height, width)
    alpha = overlay_alpha(probability, floor, max_alpha)
    rgba = np.empty((height, width, 4), np.uint8)
    rgba[..., :3] = colourise(probability)
    rgba[..., 3] = np.round(alpha * 255).astype(np.uint8)
    return rgba


def heatmap_layer(heatmap: np.ndarray, side: int = DISPLAY_SIDE) -> np.ndarray:
    """The damage heatmap as the operator window's RGBA layer: colour-mapped, transparent
    where the model sees nothing; the layer's opacity sets how strongly it covers the tray."""
    return heatmap_rgba(heatmap, side, side, max_alpha=1.0)
