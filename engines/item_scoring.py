"""The item scorer's view: the square item crop, scored beside the whole tray.

The tray scorer sees the 2048 px tray at 512 px, a quarter of its resolution; a faint
scratch one pixel wide or a single empty blister cavity is blurred away there. The item
scorer (same network, trained on item crops: ``station-app train scorer --region item``)
sees the crop ``engines.item_crop`` cuts (item box + 10 %), about three times sharper on
the item. Its probabilities enter the fusion as their own features (``engines.fusion``);
its heatmap is folded into the tray's grid here, and its defect types are averaged with the
tray's, so the operator sees one heatmap and one list of likely types.
"""

from __future__ import annotations

import cv2
import numpy as np

from engines.item_crop import CropBox
from engines.scoring import SupervisedScore, mean_probability


def paste_item_heatmap(item_heatmap: np.ndarray, box: CropBox, tray_shape: tuple[int, int],
                       grid_shape: tuple[int, int]) -> np.ndarray:
    """The item heatmap (on the crop's grid) on the tray heatmap's grid, 0 outside the box.

    The crop's grid is finer than the tray's over the item, so hot cells are first spread
    by a maximum filter as wide as one tray cell: a one-cell scratch stays hot instead of
    being averaged away."""
    tray_height, tray_width = tray_shape
    grid_height, grid_width = grid_shape
    item_cells = item_heatmap.shape[0]
    scale_x = box.side * grid_width / tray_width / item_cells     # tray cells per item cell
    scale_y = box.side * grid_height / tray_height / item_cells
    spread = max(1, int(round(1.0 / min(scale_x, scale_y))))
    source = item_heatmap.astype(np.float32)
    if spread > 1:
        source = cv2.dilate(source, np.ones((spread, spread), np.uint8))
    # Cell centres: item cell i sits at (i + 0.5) · scale in tray-grid units from the box.
    origin_x = box.x * grid_width / tray_width
    origin_y = box.y * grid_height / tray_height
    transform = np.float32([[scale_x, 0, origin_x + 0.5 * scale_x - 0.5],
                            [0, scale_y, origin_y + 0.5 * scale_y - 0.5]])
    return cv2.warpAffine(source, transform, (grid_width, grid_height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


def with_item_view(tray: SupervisedScore, item: SupervisedScore, box: CropBox,
                   tray_shape: tuple[int, int]) -> SupervisedScore:
    """The tray's score with the item's types and heatmap folded in.

    P(any) and P(major) stay the tray scorer's (the fusion weighs the item's separately).
    Types: the logit mean of both views, as the mirrored views are combined. Heatmap: the
    larger of the two per cell, so a hot spot either view sees is shown."""
    pasted = paste_item_heatmap(item.heatmap, box, tray_shape, tray.heatmap.shape)
    types = {name: mean_probability(np.array([probability, item.p_types.get(name, probability)]))
             for name, probability in tray.p_types.items()}
    return SupervisedScore(tray.p_any, tray.p_major, types,
                           np.maximum(tray.heatmap, pasted).astype(np.float32))
