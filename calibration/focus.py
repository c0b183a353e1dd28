"""Focus: a sharpness measure on the tray, and the best value seen while turning the ring.

No absolute number says "in focus" for every scene, so the wizard's focus step shows
the live sharpness against the best seen since the step started: the technician turns
the focus ring through the sharpest point and back until the bar is near full.

The measure is the variance of the Laplacian (or the Tenengrad gradient energy) divided
by the squared mean level, so changing the light or the exposure does not move it, only
focus (and scene content) does. It is computed at full resolution on the region given
(the tray), since downscaling would hide exactly the fine detail that defocus removes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from calibration.photometry import as_quad, quad_mask

Method = Literal["laplacian", "tenengrad"]
MIN_MEAN_FRACTION = 0.03  # darker than this (lens cap, lights off): no meaningful measure


class FocusError(ValueError):
    """The frame cannot be measured (too dark, region outside the frame)."""


def sharpness(frame: np.ndarray, region: object = None, method: Method = "laplacian") -> float:
    """Sharpness of ``frame`` inside ``region`` (four corners or x, y, width, height;
    None: the whole frame), independent of brightness. Higher is sharper."""
    frame = np.asarray(frame)
    gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    full = float(np.iinfo(gray.dtype).max) if np.issubdtype(gray.dtype, np.integer) else 1.0
    quad = as_quad(region, gray.shape)
    x0, y0 = np.maximum(np.floor(quad.min(axis=0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(quad.max(axis=0)).astype(int) + 1, gray.shape[::-1])
    if x1 - x0 < 8 or y1 - y0 < 8:
        raise FocusError(f"the focus region {np.round(quad, 1).tolist()} is outside the frame "
                         f"or smaller than 8 pixels")
    patch = gray[y0:y1, x0:x1].astype(np.float32)
    mask = quad_mask(patch.shape, quad - [x0, y0])
    # Keep the filter's support inside the region: the rim's edge is not focus detail.
    mask = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    if mask.sum() < 64:
        raise FocusError("the focus region is too small to measure")
    mean = float(patch[mask].mean())
    if mean < MIN_MEAN_FRACTION * full:
        raise FocusError(f"the image is too dark to judge focus (mean {mean / full:.1%} of "
                         f"full scale): switch the light on and remove the lens cap")
    if method == "laplacian":
        response = cv2.Laplacian(patch, cv2.CV_32F, ksize=3)
        energy = float(response[mask].var())
    elif method == "tenengrad":
        gx = cv2.Sobel(patch, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(patch, cv2.CV_32F, 0, 1, ksize=3)
        energy = float((gx * gx + gy * gy)[mask].mean())
    else:
        raise ValueError(f"unknown sharpness method {method!r}; use laplacian or tenengrad")
    return energy / (mean * mean)


@dataclass(frozen=True)
class FocusReading:
    """One live reading: ``relative`` = value / best so far (the bar, 0 to 1)."""

    value: float
    best: float
    readings: int
    passed: bool
    pass_fraction: float

    @property
    def relative(self) -> float:
        return self.value / self.best if self.best > 0 else 0.0

    def describe(self) -> str:
        return (f"sharpness {self.value:.4g} ({self.relative:.0%} of the best seen, "
                f"{self.best:.4g})")


class FocusTracker:
    """Remembers the best and the lowest sharpness since the last reset. A reading passes
    when it is within ``pass_fraction`` of the best, at least ``min_readings`` were
    taken, and the readings span a range: the lowest is at most ``dip_fraction`` of the
    best. That range is the evidence that the ring was turned through the sharpest
    point; frames of a ring nobody touched are all alike and never pass."""

    def __init__(self, pass_fraction: float = 0.9, min_readings: int = 3,
                 dip_fraction: float = 0.8) -> None:
        if not 0 < pass_fraction <= 1:
            raise ValueError(f"pass_fraction must be in (0, 1], got {pass_fraction}")
        if not 0 < dip_fraction < pass_fraction:
            raise ValueError(f"dip_fraction must be in (0, pass_fraction), got {dip_fraction}")
        self.pass_fraction = pass_fraction
        self.min_readings = min_readings
        self.dip_fraction = dip_fraction
        self.reset()

    def reset(self) -> None:
        self.best = 0.0
        self.lowest = float("inf")
        self.readings = 0
        self.last: FocusReading | None = None

    @property
    def turned(self) -> bool:
        """The readings span the range that turning the ring through the peak gives."""
        return self.best > 0 and self.lowest <= self.dip_fraction * self.best

    def update(self, value: float) -> FocusReading:
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"sharpness must be a finite number >= 0, got {value}")
        self.readings += 1
        self.best = max(self.best, float(value))
        self.lowest = min(self.lowest, float(value))
        passed = (self.readings >= self.min_readings and self.turned
                  and value >= self.pass_fraction * self.best)
        self.last = FocusReading(float(value), self.best, self.readings, bool(passed),
                                 self.pass_fraction)
        return self.last

    def criterion(self) -> str:
        return (f"sharpness within {1 - self.pass_fraction:.0%} of the best value seen, "
                f"after turning the focus ring through the sharpest point: the readings "
                f"must have dropped to {self.dip_fraction:.0%} of the best or below "
                f"(at least {self.min_readings} readings)")
