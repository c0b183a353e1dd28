"""From a camera frame to what the scorers need: tray image, item mask, item crop.

The first half of every inspection (station, replay and bench all run this code):
warp the frame to the tray image with the calibrated geometry, check the tray has not
moved, gate on exposure, segment the item, gate on the mask, cut the square crop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from engines.item_crop import CropBox, square_item_crop
from engines.quality_gates import QualityIssue, check_exposure, check_item_mask, item_components
from engines.segmentation import ItemSegmenter
from engines.tray_alignment import TrayAlignment, measure_alignment
from engines.tray_geometry import TrayGeometry

TRAY_MOVED = "tray_moved"


@dataclass
class ExtractedItem:
    """Everything the first half of the pipeline produced, and how long each stage took."""

    tray_image: np.ndarray
    alignment: TrayAlignment | None
    mask: np.ndarray | None = None
    crop: np.ndarray | None = None
    crop_box: CropBox | None = None
    issues: list[QualityIssue] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return not self.issues


def _largest_item_at_full_size(mask: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """The full-size mask limited to the largest blob, found on the coarse mask (dust and
    stray blobs cost a connected-components pass at model size, not at 2048²)."""
    labels, areas = item_components(coarse)
    if len(areas) <= 1:
        return mask
    largest = np.where(labels == int(np.argmax(areas)) + 1, 255, 0).astype(np.uint8)
    largest = cv2.dilate(largest, np.ones((3, 3), np.uint8))
    keep = cv2.resize(largest, (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_NEAREST)
    return cv2.bitwise_and(mask, keep)


class _Stopwatch:
    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings
        self.started = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = (now - self.started) * 1000.0
        self.started = now


class ItemExtractor:
    """Runs the tray warp, checks, segmentation and crop for one station geometry.

    Without a geometry only ``from_tray_image`` works (replay of already-warped trays).
    """

    def __init__(self, geometry: TrayGeometry | None, segmenter: ItemSegmenter,
                 check_alignment: bool = True) -> None:
        self.geometry = geometry
        self.segmenter = segmenter
        self.check_alignment = check_alignment

    def from_frame(self, frame: np.ndarray) -> ExtractedItem:
        if self.geometry is None:
            raise ValueError("warping a frame needs the tray geometry from calibration")
        timings: dict[str, float] = {}
        watch = _Stopwatch(timings)
        alignment = None
        if self.check_alignment:
            alignment = measure_alignment(frame, self.geometry)
            watch.lap("tray_check")
            if not alignment.aligned:
                issue = QualityIssue(TRAY_MOVED, "The tray is not where calibration put it: "
                                     "push it back against its stops; if this repeats, call "
                                     "a technician to recalibrate the geometry "
                                     f"({alignment.describe()}).")
                return ExtractedItem(tray_image=np.empty((0, 0, 3), np.uint8),
                                     alignment=alignment, issues=[issue], timings_ms=timings)
        tray_image = self.geometry.warp(frame)
        watch.lap("tray_warp")
        result = self.from_tray_image(tray_image)
        result.alignment = alignment
        result.timings_ms = {**timings, **result.timings_ms}
        return result

    def from_tray_image(self, tray_image: np.ndarray) -> ExtractedItem:
        """For replay: data sets already hold the warped tray image."""
        timings: dict[str, float] = {}
        watch = _Stopwatch(timings)
        issues = check_exposure(tray_image)
        watch.lap("exposure_check")
        result = ExtractedItem(tray_image=tray_image, alignment=None, issues=issues,
                               timings_ms=timings)
        if issues:
            return result
        segmentation = self.segmenter.segment(tray_image)
        watch.lap("segmentation")
        # Gates look at blob counts and fractions, which the model-resolution mask gives
        # as well as the full one, at a sixty-fourth of the cost.
        coarse = (segmentation.item_probability > 0.5).astype(np.uint8)
        result.issues = check_item_mask(coarse)
        if not result.issues:
            result.mask = _largest_item_at_full_size(segmentation.mask, coarse)
            result.crop, result.crop_box = square_item_crop(tray_image, result.mask)
        watch.lap("crop")
        return result
