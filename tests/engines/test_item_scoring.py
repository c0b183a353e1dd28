"""The item scorer's heatmap lands where its crop came from; its types join the tray's."""

from __future__ import annotations

import numpy as np
import pytest

from engines.item_crop import CropBox
from engines.item_scoring import paste_item_heatmap, with_item_view
from engines.scoring import SupervisedScore, mean_probability
from engines.taxonomy import DEFECT_TYPES


def test_a_hot_item_cell_lands_on_the_tray_cell_under_it():
    # Crop 512 px at (1024, 512) of a 2048 px tray; item grid 64², tray grid 64².
    item = np.zeros((64, 64), np.float32)
    item[32, 16] = 0.9            # centre at crop (16.5, 32.5)/64 · 512 = (132, 260) px
    pasted = paste_item_heatmap(item, CropBox(1024, 512, 512), (2048, 2048), (64, 64))
    # Tray pixel (1156, 772) → tray cell (36, 24) of 32 px cells.
    assert np.unravel_index(np.argmax(pasted), pasted.shape) == (24, 36)
    assert pasted[24, 36] > 0.5                    # one small cell is not averaged away
    assert pasted[:16].max() == 0 and pasted[:, :32].max() == 0   # nothing outside the box


def test_a_box_reaching_past_the_tray_is_clipped():
    item = np.full((32, 32), 0.8, np.float32)
    pasted = paste_item_heatmap(item, CropBox(-256, 1792, 512), (2048, 2048), (64, 64))
    assert pasted[56:, :8].min() > 0.7             # the box's part inside the tray
    assert pasted[:50].max() == 0 and pasted[:, 12:].max() == 0


def _score(p_any: float, heat: np.ndarray, types: float) -> SupervisedScore:
    return SupervisedScore(p_any, p_any / 2, {name: types for name in DEFECT_TYPES}, heat)


def test_the_tray_score_keeps_its_probabilities_and_gains_the_item_view():
    tray_heat = np.full((64, 64), 0.1, np.float32)
    item_heat = np.zeros((64, 64), np.float32)
    item_heat[10, 10] = 1.0
    tray, item = _score(0.2, tray_heat, 0.1), _score(0.9, item_heat, 0.8)
    combined = with_item_view(tray, item, CropBox(0, 0, 1024), (2048, 2048))
    assert (combined.p_any, combined.p_major) == (0.2, 0.1)    # the fusion weighs the item's
    assert combined.p_types["superficial"] == pytest.approx(mean_probability(np.array([0.1, 0.8])))
    assert combined.heatmap[5, 5] > 0.5                        # item cell (10, 10) at half scale
    assert (combined.heatmap >= tray_heat).all()
    assert (combined.heatmap[40:, 40:] == tray_heat[40:, 40:]).all()
