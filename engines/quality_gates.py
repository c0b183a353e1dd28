"""Quality gates: frames the station must not score, each with what the associate should do.

A verdict on a frame with no item, two items, an item under the rim or a washed-out
image would be a guess; rejecting it with a clear instruction costs a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MIN_ITEM_FRACTION = 0.002        # of the tray area; smaller blobs are dust or noise
SECOND_ITEM_FRACTION = 0.15      # a second blob this big (relative to the largest) is an item
RIM_BAND_FRACTION = 0.015        # mask pixels this close to the tray edge mean "cut by rim"
MAX_CENTRE_OFFSET = 0.30         # item centre this far from the tray centre (of the side)
OVER_EXPOSED_FRACTION = 0.05     # of pixels at ≥ 250 in any channel
UNDER_EXPOSED_MEAN = 35.0        # mean grey level below this is too dark
EXPOSURE_SAMPLING = 4            # every 4th pixel each way: statistics, not details


@dataclass(frozen=True)
class QualityIssue:
    code: str
    message: str


NO_ITEM = "no_item"
SEVERAL_ITEMS = "several_items"
ITEM_CUT = "item_cut"
OFF_CENTRE = "off_centre"
OVER_EXPOSED = "over_exposed"
UNDER_EXPOSED = "under_exposed"


def check_exposure(tray_image: np.ndarray) -> list[QualityIssue]:
    """Over- and under-exposure of the tray image (RGB uint8)."""
    issues = []
    sample = tray_image[::EXPOSURE_SAMPLING, ::EXPOSURE_SAMPLING]
    brightest = sample.max(axis=2) if sample.ndim == 3 else sample
    clipped = np.count_nonzero(brightest >= 250) / brightest.size
    if clipped > OVER_EXPOSED_FRACTION:
        issues.append(QualityIssue(OVER_EXPOSED, f"Image too bright ({clipped:.0%} clipped): "
                                   "close the enclosure and capture again; if it persists, "
                                   "call a technician to check lights and exposure."))
    mean_level = float(np.mean(sample))
    if mean_level < UNDER_EXPOSED_MEAN:
        issues.append(QualityIssue(UNDER_EXPOSED, f"Image too dark (mean level {mean_level:.0f}): "
                                   "check that the lights are on and capture again; if it "
                                   "persists, call a technician."))
    return issues


def item_components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label image and areas of the mask's connected blobs (background excluded)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        (mask > 0).astype(np.uint8), connectivity=8)
    return labels, stats[1:, cv2.CC_STAT_AREA]


def check_item_mask(mask: np.ndarray) -> list[QualityIssue]:
    """Presence, count, rim contact and centring of the item, from its mask."""
    height, width = mask.shape[:2]
    labels, areas = item_components(mask)
    if len(areas) == 0 or areas.max() < MIN_ITEM_FRACTION * height * width:
        return [QualityIssue(NO_ITEM, "No item found in the tray: place the item in the middle "
                             "of the tray and capture again.")]
    issues = []
    largest = int(np.argmax(areas))
    if np.sum(areas >= SECOND_ITEM_FRACTION * areas[largest]) > 1:
        issues.append(QualityIssue(SEVERAL_ITEMS, "More than one item in the tray: inspect one "
                                   "item at a time; remove the others and capture again."))
    item = labels == largest + 1
    band = max(1, int(round(RIM_BAND_FRACTION * min(height, width))))
    touches_rim = (item[:band].any() or item[-band:].any() or item[:, :band].any()
                   or item[:, -band:].any())
    if touches_rim:
        issues.append(QualityIssue(ITEM_CUT, "The item touches the tray rim: move it fully inside "
                                   "the tray, towards the middle, and capture again."))
    moments = cv2.moments(item.astype(np.uint8), binaryImage=True)
    centre_x, centre_y = moments["m10"] / moments["m00"], moments["m01"] / moments["m00"]
    offset = max(abs(centre_x - width / 2) / width, abs(centre_y - height / 2) / height)
    if offset > MAX_CENTRE_OFFSET and not touches_rim:
        issues.append(QualityIssue(OFF_CENTRE, "The item is far from the middle of the tray: "
                                   "move it to the middle and capture again."))
    return issues
