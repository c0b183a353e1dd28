"""Heatmap layers: size, type, transparency where cold, colour where hot."""

from __future__ import annotations

import numpy as np
import pytest

from engines.heatmap import DISPLAY_SIDE, heatmap_layer, heatmap_rgba, upsample_heatmap


def _hot_top_left(cells: tuple[int, int] = (12, 16)) -> np.ndarray:
    heat = np.zeros(cells, np.float32)
    heat[:4, :4] = 1.0
    return heat


def test_display_layer_is_opaque_where_hot_and_transparent_where_cold():
    layer = heatmap_layer(_hot_top_left())
    assert layer.shape == (DISPLAY_SIDE, DISPLAY_SIDE, 4) and layer.dtype == np.uint8
    assert layer[40, 40, 3] == 255                          # hot cell: full opacity
    assert layer[DISPLAY_SIDE - 40, DISPLAY_SIDE - 40, 3] == 0   # cold: the tray shows through


def test_zero_heatmap_layer_is_fully_transparent():
    assert heatmap_layer(np.zeros((8, 8), np.float32), side=64)[..., 3].max() == 0


def test_rgba_alpha_follows_probability():
    rgba = heatmap_rgba(_hot_top_left(), 96, 128)
    assert rgba.shape == (96, 128, 4) and rgba.dtype == np.uint8
    assert rgba[10, 10, 3] > 100
    assert rgba[80, 100, 3] == 0


def test_upsampling_is_smooth_and_clipped():
    heat = np.zeros((4, 4), np.float32)
    heat[1:3, 1:3] = 1.0
    big = upsample_heatmap(heat, 64, 64)
    assert big.min() >= 0.0 and big.max() <= 1.0
    levels = np.unique(np.round(big[32], 3))
    assert len(levels) > 4   # a ramp, not two blocky levels
    with pytest.raises(ValueError):
        upsample_heatmap(np.zeros((1, 4, 4)), 8, 8)
