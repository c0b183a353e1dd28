"""Automatic tray detection: the tray's four outer corners in a camera frame.

Used by the calibration wizard's geometry step and as a fallback when the per-frame
check says the tray moved. A rough outline comes from the largest quadrilateral blob in
a downscaled frame; each side is then refined at full resolution by fitting a line to
the rim edge (see ``tray_rim``) and intersecting neighbouring sides.
"""

from __future__ import annotations

import cv2
import numpy as np

from engines.tray_geometry import TRAY_SIZE, TrayGeometry
from engines.tray_rim import fit_line, intersect, sample_rim, to_gray

WORKING_WIDTH = 800


class TrayNotFound(RuntimeError):
    """No tray-shaped outline in the frame."""


def order_corners(points: np.ndarray) -> np.ndarray:
    """Order four points top-left, top-right, bottom-right, bottom-left (clockwise on screen).

    Assumes the tray is rotated by less than 45°, as it is in a fixed enclosure.
    """
    points = np.asarray(points, dtype=np.float64).reshape(4, 2)
    centre = points.mean(axis=0)
    angles = np.arctan2(points[:, 1] - centre[1], points[:, 0] - centre[0])
    clockwise = points[np.argsort(angles)]  # y down: increasing angle runs clockwise
    start = int(np.argmin(clockwise.sum(axis=1)))
    return np.roll(clockwise, -start, axis=0)


def _enclosed_by_edges(gray_small: np.ndarray, low: int, high: int) -> np.ndarray:
    """Everything the frame border cannot reach without crossing an edge: the tray and
    what lies in it, whatever the tray's and the enclosure's brightness."""
    edges = cv2.Canny(gray_small, low, high)
    edges = cv2.dilate(edges, np.ones((3, 3), np.uint8))
    height, width = edges.shape
    outside = np.zeros((height + 2, width + 2), np.uint8)
    reachable = edges.copy()
    for x, y in ((0, 0), (width - 1, 0), (0, height - 1), (width - 1, height - 1)):
        if reachable[y, x] == 0:
            cv2.floodFill(reachable, outside, (x, y), 128)
    return np.where(reachable == 128, 0, 255).astype(np.uint8)


def _quad_candidates(gray_small: np.ndarray) -> list[np.ndarray]:
    blurred = cv2.GaussianBlur(gray_small, (5, 5), 0)
    masks = []
    _, bright = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    masks += [bright, 255 - bright]
    for low, high in ((30, 90), (10, 30)):
        masks.append(_enclosed_by_edges(blurred, low, high))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    quads = []
    for mask in masks:
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for contour in sorted(contours, key=cv2.contourArea, reverse=True)[:3]:
            hull = cv2.convexHull(contour)
            perimeter = cv2.arcLength(hull, True)
            for fraction in (0.01, 0.02, 0.03, 0.05):
                approx = cv2.approxPolyDP(hull, fraction * perimeter, True)
                if len(approx) == 4:
                    quads.append(approx.reshape(4, 2).astype(np.float64))
                    break
    return quads


def _score_quad(quad: np.ndarray, shape: tuple[int, int]) -> float:
    """Prefer large, square-ish quads (the tray fills most of the frame) clear of the
    frame's border (the enclosure's walls reach it; the tray never does)."""
    height, width = shape
    image_area = float(height * width)
    margin = 2.0
    if (quad.min(axis=0) < margin).any() or (quad[:, 0].max() > width - 1 - margin
                                             or quad[:, 1].max() > height - 1 - margin):
        return -1.0
    area = cv2.contourArea(quad.astype(np.float32))
    if not 0.15 * image_area < area < 0.98 * image_area:
        return -1.0
    sides = np.linalg.norm(np.roll(quad, -1, axis=0) - quad, axis=1)
    squareness = sides.min() / sides.max()
    if squareness < 0.6:
        return -1.0
    # The tray is the largest square thing in view; squareness breaks near-ties.
    return area / image_area + 0.1 * squareness


def rough_corners(frame: np.ndarray) -> np.ndarray:
    """Corners to within a few downscaled pixels, in frame coordinates."""
    gray = to_gray(frame)
    scale = WORKING_WIDTH / gray.shape[1]
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    scored = [(_score_quad(quad, small.shape), quad) for quad in _quad_candidates(small)]
    scored = [item for item in scored if item[0] > 0]
    if not scored:
        raise TrayNotFound("no tray outline found in the frame: check that the empty tray is "
                           "fully in view and lit, then retry")
    best = max(scored, key=lambda item: item[0])[1]
    return order_corners((best + 0.5) / scale - 0.5)


def refine_corners(gray: np.ndarray, corners: np.ndarray,
                   searches: tuple[float, ...] = (80.0, 24.0, 8.0)) -> np.ndarray:
    """Sub-pixel corners: fit a line to the rim edge on each side, intersect neighbours."""
    corners = np.asarray(corners, dtype=np.float64)
    for search in searches:
        lines = []
        for side in sample_rim(gray, corners, search_px=search, samples=96):
            found = side.found_points()
            if len(found) < 8:
                raise TrayNotFound("the tray rim is not clearly visible on every side: "
                                   "clear the tray edges and check the lighting")
            lines.append(fit_line(found))
        corners = np.array([intersect(lines[(i - 1) % 4], lines[i]) for i in range(4)])
    return corners


def detect_tray(frame: np.ndarray, size: int = TRAY_SIZE) -> TrayGeometry:
    """Find the tray in a frame and return its geometry."""
    corners = refine_corners(to_gray(frame), rough_corners(frame))
    try:
        return TrayGeometry.from_array(corners, size)
    except ValueError as error:
        raise TrayNotFound(f"the tray outline found is not a plausible tray ({error})") from error
