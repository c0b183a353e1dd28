"""Pixel-format conversion and software white balance, on images mosaicked here."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.camera import convert

# GenICam pattern -> (row, column) of R and of B within each 2×2 cell.
BAYER_LAYOUT = {
    "BayerRG8": ((0, 0), (1, 1)),
    "BayerGR8": ((0, 1), (1, 0)),
    "BayerGB8": ((1, 0), (0, 1)),
    "BayerBG8": ((1, 1), (0, 0)),
}


def mosaic(rgb: np.ndarray, pixel_format: str) -> np.ndarray:
    """What a sensor with this GenICam Bayer pattern records (green on the other two sites)."""
    (ry, rx), (by, bx) = BAYER_LAYOUT[pixel_format]
    raw = rgb[..., 1].copy()
    raw[ry::2, rx::2] = rgb[ry::2, rx::2, 0]
    raw[by::2, bx::2] = rgb[by::2, bx::2, 2]
    return raw


def scene() -> np.ndarray:
    """A smooth gradient with a red and a blue square."""
    y, x = np.mgrid[0:96, 0:128].astype(np.float32)
    rgb = np.stack([60 + x, 60 + y, 180 - x / 2], axis=-1).astype(np.uint8)
    rgb[16:48, 16:48] = (255, 0, 0)
    rgb[16:48, 72:104] = (0, 0, 255)
    return rgb


@pytest.mark.parametrize("pixel_format", sorted(BAYER_LAYOUT))
def test_bayer_demosaics_to_the_right_colours(pixel_format):
    rgb = scene()
    out = convert.to_rgb(mosaic(rgb, pixel_format), pixel_format)
    assert tuple(out[32, 32]) == (255, 0, 0)
    assert tuple(out[32, 88]) == (0, 0, 255)
    smooth = np.abs(out[56:92, 4:124].astype(int) - rgb[56:92, 4:124]).mean()
    assert smooth < 1.0


def test_the_opencv_name_of_the_same_pattern_would_swap_red_and_blue():
    """Why the table exists: OpenCV's BayerRG is not GenICam's BayerRG."""
    import cv2

    raw = mosaic(scene(), "BayerRG8")
    wrong = cv2.cvtColor(raw, cv2.COLOR_BayerRG2RGB)
    assert tuple(wrong[32, 32]) == (0, 0, 255)
    assert tuple(convert.to_rgb(raw, "BayerRG8")[32, 32]) == (255, 0, 0)


def test_rgb_is_passed_through_bgr_is_swapped_mono_is_replicated():
    rgb = scene()
    assert convert.to_rgb(rgb, "RGB8Packed") is rgb
    assert np.array_equal(convert.to_rgb(rgb[..., ::-1].copy(), "BGR8Packed"), rgb)
    grey = rgb[..., 1].copy()
    assert np.array_equal(convert.to_rgb(grey, "Mono8"), np.dstack([grey] * 3))


def test_unsupported_and_mismatched_images_are_refused():
    with pytest.raises(convert.UnsupportedPixelFormat, match="Mono12"):
        convert.to_rgb(np.zeros((4, 4), np.uint8), "Mono12")
    with pytest.raises(ValueError, match="channel"):
        convert.to_rgb(np.zeros((4, 4), np.uint8), "RGB8Packed")
    with pytest.raises(ValueError, match="8-bit"):
        convert.to_rgb(np.zeros((4, 4), np.uint16), "BayerRG8")


def test_white_balance_multiplies_and_saturates():
    rgb = np.array([[[100, 100, 100], [200, 50, 10]]], np.uint8)
    out = convert.apply_white_balance(rgb, (2.0, 1.0, 0.5))
    assert out.tolist() == [[[200, 100, 50], [255, 50, 5]]]
    assert rgb.tolist()[0][0] == [100, 100, 100]  # not in place unless asked
    assert convert.apply_white_balance(rgb, (1.0, 1.0, 1.0)) is rgb
