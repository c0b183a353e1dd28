"""Tray geometry: the homography from a camera frame to the square tray image.

The calibration profile stores the tray's four outer corners in frame pixels, ordered
top-left, top-right, bottom-right, bottom-left *of the tray image* (not of the frame:
the tray may sit rotated). Every frame is warped with the same homography, and every
frame is checked against it, because a bumped tray silently ruins every score after it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

TRAY_SIZE = 2048


def _as_corners(corners: np.ndarray | list) -> np.ndarray:
    array = np.asarray(corners, dtype=np.float64).reshape(-1, 2)
    if array.shape != (4, 2) or not np.all(np.isfinite(array)):
        raise ValueError(f"tray corners must be four finite (x, y) points, got {array.tolist()}")
    return array


def _is_convex_clockwise(corners: np.ndarray) -> bool:
    """True when the quad is convex and ordered clockwise in image coordinates (y down)."""
    signs = []
    for i in range(4):
        a, b, c = corners[i], corners[(i + 1) % 4], corners[(i + 2) % 4]
        (ux, uy), (vx, vy) = b - a, c - b
        signs.append(ux * vy - uy * vx)
    return all(s > 0 for s in signs)


@dataclass(frozen=True)
class TrayGeometry:
    """Where the tray is in the frame, and the warp that maps it to a square image."""

    corners: tuple[tuple[float, float], ...]
    size: int = TRAY_SIZE

    def __post_init__(self) -> None:
        corners = _as_corners(self.corners)
        if not _is_convex_clockwise(corners):
            raise ValueError("tray corners must form a convex quadrilateral ordered top-left, "
                             f"top-right, bottom-right, bottom-left; got {corners.tolist()}")
        object.__setattr__(self, "corners", tuple(map(tuple, corners.tolist())))

    @classmethod
    def from_array(cls, corners: np.ndarray | list, size: int = TRAY_SIZE) -> "TrayGeometry":
        return cls(tuple(map(tuple, _as_corners(corners).tolist())), size)

    @property
    def corner_array(self) -> np.ndarray:
        return np.asarray(self.corners, dtype=np.float64)

    def destination(self) -> np.ndarray:
        """The tray's outer corners in the tray image: the outer edges of its corner pixels."""
        first, last = -0.5, self.size - 0.5
        return np.array([[first, first], [last, first], [last, last], [first, last]],
                        dtype=np.float64)

    @property
    def homography(self) -> np.ndarray:
        """3×3 matrix mapping frame pixels to tray-image pixels."""
        return cv2.getPerspectiveTransform(self.corner_array.astype(np.float32),
                                           self.destination().astype(np.float32))

    def warp(self, frame: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """The square tray image cut from a frame."""
        return cv2.warpPerspective(frame, self.homography, (self.size, self.size),
                                   flags=interpolation, borderMode=cv2.BORDER_REPLICATE)

    def frame_points(self, tray_points: np.ndarray) -> np.ndarray:
        """Map tray-image points (N×2) back into frame pixels."""
        points = np.asarray(tray_points, dtype=np.float64).reshape(-1, 1, 2)
        return cv2.perspectiveTransform(points, np.linalg.inv(self.homography)).reshape(-1, 2)

    def tray_points(self, frame_points: np.ndarray) -> np.ndarray:
        """Map frame points (N×2) into tray-image pixels."""
        points = np.asarray(frame_points, dtype=np.float64).reshape(-1, 1, 2)
        return cv2.perspectiveTransform(points, self.homography).reshape(-1, 2)

    def pixel_size_ratio(self) -> float:
        """Frame pixels per tray-image pixel, averaged over the four sides."""
        corners = self.corner_array
        sides = [np.linalg.norm(corners[(i + 1) % 4] - corners[i]) for i in range(4)]
        return float(np.mean(sides) / self.size)


def mean_corner_error(found: TrayGeometry, truth: TrayGeometry) -> float:
    """Mean distance between corresponding corners, in tray-image pixels (2048 scale)."""
    difference = found.corner_array - truth.corner_array
    return float(np.mean(np.linalg.norm(difference, axis=1)) / truth.pixel_size_ratio())
