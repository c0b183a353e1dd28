"""Heatmap overlays: size, type, transparency where cold, colour where hot."""

from __future__ import annotations

import numpy as np
import pytest

from engines.heatmap import heatmap_rgba, overlay_heatmap, upsample_heatmap


def _tray(height: int = 96, width: int = 128) -> np.ndarray:
    return np.full((height, width, 3), 128, np.uint8)


def _hot_top_left(cells: tuple[int, int] = (12, 16)) -> np.ndarray:
    heat = np.zeros(cells, np.float32)
    heat[:4, :4] = 1.0
    return heat


def test_overlay_has_the_image_size_and_type():
    out = overlay_heatmap(_tray(), _hot_top_left())
    assert out.shape == (96, 128, 3) and out.dtype == np.uint8


def test_hot_regions_are_coloured_and_cold_regions_untouched():
    tray = _tray()
    out = overlay_heatmap(tray, _hot_top_left())
    assert np.abs(out[5:20, 5:20].astype(int) - 128).max() > 40       # hot: visibly coloured
    np.testing.assert_array_equal(out[60:, 80:], tray[60:, 80:])       # cold: the tray itself


def test_zero_heatmap_leaves_the_image_unchanged():
    tray = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(overlay_heatmap(tray, np.zeros((8, 8), np.float32)), tray)


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
