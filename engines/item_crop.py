"""The square item crop: the item's bounding box with 10 % padding on every side."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PADDING = 0.10


@dataclass(frozen=True)
class CropBox:
    """A square in tray-image pixels; it may reach past the tray image, which is padded."""

    x: int
    y: int
    side: int

    def as_tuple(self) -> tuple[int, int, int]:
        return self.x, self.y, self.side


def item_box(mask: np.ndarray, padding: float = PADDING) -> CropBox:
    """Square around the mask's bounding box, centred on it, ``padding`` of the longer side
    added on each side."""
    left, top, width, height = cv2.boundingRect(np.ascontiguousarray(mask, dtype=np.uint8))
    if width == 0 or height == 0:
        raise ValueError("the item mask is empty")
    x0, x1, y0, y1 = left, left + width, top, top + height
    side = int(round(max(x1 - x0, y1 - y0) * (1.0 + 2.0 * padding)))
    centre_x, centre_y = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    return CropBox(int(round(centre_x - side / 2.0)), int(round(centre_y - side / 2.0)), side)


def cut_square(image: np.ndarray, box: CropBox) -> np.ndarray:
    """Cut the box out of the image, replicating the border where the box leaves it."""
    height, width = image.shape[:2]
    pad_left, pad_top = max(0, -box.x), max(0, -box.y)
    pad_right = max(0, box.x + box.side - width)
    pad_bottom = max(0, box.y + box.side - height)
    x0, y0 = max(0, box.x), max(0, box.y)
    x1, y1 = min(width, box.x + box.side), min(height, box.y + box.side)
    crop = image[y0:y1, x0:x1]
    if pad_left or pad_top or pad_right or pad_bottom:
        crop = cv2.copyMakeBorder(crop, pad_top, pad_bottom, pad_left, pad_right,
                                  cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(crop)


def square_item_crop(image: np.ndarray, mask: np.ndarray,
                     padding: float = PADDING) -> tuple[np.ndarray, CropBox]:
    """The item crop the station shows and scores, and where it came from."""
    box = item_box(mask, padding)
    return cut_square(image, box), box
