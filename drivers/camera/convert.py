"""Camera pixel formats to RGB uint8, and white balance applied in software.

GenICam names a Bayer pattern by the colours of the first two pixels of the first row
(``BayerRG8``: R at (0, 0), G at (0, 1)); OpenCV names it by the second row's second and
third pixels. So GenICam ``BayerRG`` is OpenCV ``BayerBG``, and so on: each pattern maps
to its diagonal opposite. Getting this wrong swaps red and blue, which is why the tests
check colours, not shapes.
"""

from __future__ import annotations

import cv2
import numpy as np

# GenICam Bayer name -> the OpenCV conversion that demosaics it to RGB.
BAYER_TO_RGB: dict[str, int] = {
    "BayerRG8": cv2.COLOR_BayerBG2RGB,
    "BayerGR8": cv2.COLOR_BayerGB2RGB,
    "BayerGB8": cv2.COLOR_BayerGR2RGB,
    "BayerBG8": cv2.COLOR_BayerRG2RGB,
}
RGB_FORMATS = ("RGB8Packed", "RGB8")  # pre-SFNC2 (emulator, GigE ace) and SFNC2 names
BGR_FORMATS = ("BGR8Packed", "BGR8")
MONO_FORMATS = ("Mono8",)

SUPPORTED_PIXEL_FORMATS: tuple[str, ...] = (
    *RGB_FORMATS, *BGR_FORMATS, *MONO_FORMATS, *BAYER_TO_RGB,
)

NEUTRAL_WHITE_BALANCE = (1.0, 1.0, 1.0)


class UnsupportedPixelFormat(ValueError):
    """The station has no conversion to RGB for this pixel format."""

    def __init__(self, pixel_format: str) -> None:
        super().__init__(
            f"pixel format {pixel_format!r} is not supported; "
            f"use one of {', '.join(SUPPORTED_PIXEL_FORMATS)}"
        )


def is_color(pixel_format: str) -> bool:
    """Whether the format carries colour (so white balance means something)."""
    return pixel_format not in MONO_FORMATS


def to_rgb(image: np.ndarray, pixel_format: str) -> np.ndarray:
    """Convert a raw camera image to HxWx3 uint8 RGB (a new array or the input itself).

    RGB images come back as they are (no copy): pass an array you own.
    """
    if image.dtype != np.uint8:
        raise ValueError(f"expected 8-bit pixels for {pixel_format}, got {image.dtype}")
    if pixel_format in RGB_FORMATS:
        _expect_channels(image, 3, pixel_format)
        return image
    if pixel_format in BGR_FORMATS:
        _expect_channels(image, 3, pixel_format)
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if pixel_format in MONO_FORMATS:
        _expect_channels(image, 1, pixel_format)
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if pixel_format in BAYER_TO_RGB:
        _expect_channels(image, 1, pixel_format)
        return cv2.cvtColor(image, BAYER_TO_RGB[pixel_format])
    raise UnsupportedPixelFormat(pixel_format)


def apply_white_balance(
    rgb: np.ndarray, gains: tuple[float, float, float], *, in_place: bool = False
) -> np.ndarray:
    """Multiply R, G, B by their gains, saturating at 255 (one table look-up per pixel)."""
    if tuple(gains) == NEUTRAL_WHITE_BALANCE:
        return rgb
    levels = np.arange(256, dtype=np.float32)[:, None] * np.asarray(gains, np.float32)[None, :]
    table = np.clip(np.rint(levels), 0, 255).astype(np.uint8).reshape(256, 1, 3)
    return cv2.LUT(rgb, table, dst=rgb if in_place else None)


def _expect_channels(image: np.ndarray, channels: int, pixel_format: str) -> None:
    found = 1 if image.ndim == 2 else image.shape[2] if image.ndim == 3 else -1
    if found != channels:
        raise ValueError(
            f"{pixel_format} image must have {channels} channel(s), got shape {image.shape}"
        )
