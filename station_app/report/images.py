"""Capture images for report galleries: loaded, downscaled, overlaid, embedded as data URIs.

Reports are single files that open anywhere, so every picture goes in as a small JPEG
``data:`` URI (about 256 px on the long side) rather than a link to the capture store.
Arrays are RGB (as ``engines.preprocess.read_rgb`` returns them); files are read with
OpenCV. A missing or unreadable image never stops a report: the tile says what is wrong.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Union

import cv2
import numpy as np

ImageSource = Union[str, os.PathLike, np.ndarray, None]
THUMBNAIL_SIDE = 256


class ImageUnavailable(Exception):
    """The image of a tile could not be shown; the message is shown instead."""


def load_rgb(source: ImageSource) -> np.ndarray:
    """An 8-bit RGB array from an array (gray, RGB or RGBA) or an image file."""
    if source is None:
        raise ImageUnavailable("no image")
    if isinstance(source, np.ndarray):
        image = source
    else:
        path = Path(source)
        if not path.is_file():
            raise ImageUnavailable(f"missing: {path.name}")
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ImageUnavailable(f"unreadable: {path.name}")
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.size == 0:
        raise ImageUnavailable("empty image")
    if image.dtype != np.uint8:
        scale = 255.0 if float(np.nanmax(image)) <= 1.0 else 1.0
        image = np.clip(np.nan_to_num(image.astype(float)) * scale, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)
    return image


def load_heat(source: ImageSource) -> np.ndarray:
    """A heatmap as floats in [0, 1]: a 2-D array, or a grayscale image file (0-255)."""
    if isinstance(source, np.ndarray) and source.ndim == 2 and source.dtype != np.uint8:
        heat = np.nan_to_num(source.astype(np.float32))
        return np.clip(heat, 0.0, 1.0)
    return cv2.cvtColor(load_rgb(source), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0


def downscale(image: np.ndarray, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """Shrink so the longer side is at most ``side`` pixels (never enlarges)."""
    height, width = image.shape[:2]
    scale = side / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def heat_overlay(base_rgb: np.ndarray, heat: np.ndarray, strength: float = 0.7) -> np.ndarray:
    """The heatmap in a JET colour scale over the image; cold areas leave the image clear."""
    heat = cv2.resize(heat, (base_rgb.shape[1], base_rgb.shape[0]),
                      interpolation=cv2.INTER_LINEAR)
    colours = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
    colours = cv2.cvtColor(colours, cv2.COLOR_BGR2RGB).astype(np.float32)
    weight = (strength * heat)[..., None]
    blended = base_rgb.astype(np.float32) * (1 - weight) + colours * weight
    return np.clip(blended, 0, 255).astype(np.uint8)


def jpeg_data_uri(image_rgb: np.ndarray, quality: int = 82) -> str:
    """``data:image/jpeg;base64,...`` of an RGB image."""
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ImageUnavailable("could not encode JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def thumbnail_uri(source: ImageSource, side: int = THUMBNAIL_SIDE) -> str:
    """Load, downscale and embed one image (raises ImageUnavailable with the reason)."""
    return jpeg_data_uri(downscale(load_rgb(source), side))


def overlay_uri(base: ImageSource, heatmap: ImageSource, side: int = THUMBNAIL_SIDE) -> str:
    """Downscaled image with its heatmap blended in, embedded."""
    if heatmap is None:
        raise ImageUnavailable("no heatmap")
    return jpeg_data_uri(heat_overlay(downscale(load_rgb(base), side), load_heat(heatmap)))
