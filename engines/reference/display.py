"""The reference anomaly map placed on the tray, on the supervised heatmap's grid."""

from __future__ import annotations

import numpy as np

from engines.reference.comparison import ReferenceResult


def reference_heatmap(result: ReferenceResult, tray_size: int, grid_shape: tuple[int, int],
                      low: float, high: float) -> np.ndarray:
    """Anomaly map resampled (nearest patch) onto a ``grid_shape`` grid covering the
    ``tray_size``² tray image, scaled so ``low`` → 0 and ``high`` → 1 (clipped); cells
    outside the item crop or its valid region are 0."""
    if not high > low:
        raise ValueError(f"high ({high}) must be above low ({low})")
    rows, cols = grid_shape
    centres_y = (np.arange(rows) + 0.5) * tray_size / rows
    centres_x = (np.arange(cols) + 0.5) * tray_size / cols
    grid = result.anomaly_map.shape[0]
    box = result.box
    patch_y = np.floor((centres_y - box.y) / box.side * grid).astype(int)
    patch_x = np.floor((centres_x - box.x) / box.side * grid).astype(int)
    inside_y = (patch_y >= 0) & (patch_y < grid)
    inside_x = (patch_x >= 0) & (patch_x < grid)
    out = np.zeros(grid_shape, np.float32)
    yy, xx = np.ix_(np.flatnonzero(inside_y), np.flatnonzero(inside_x))
    values = result.anomaly_map[patch_y[inside_y]][:, patch_x[inside_x]]
    valid = result.valid[patch_y[inside_y]][:, patch_x[inside_x]]
    out[yy, xx] = np.where(valid, np.clip((values - low) / (high - low), 0.0, 1.0), 0.0)
    return out
