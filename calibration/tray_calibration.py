"""Tray geometry calibration: corners, homography, re-projection error, pixel size.

The corners come from automatic detection (``engines.tray_detection``) or from the
technician, who may drag them on the overlay. Four corners always fit a homography
exactly, so the check uses more evidence than the corners: the tray rim's outer edge is
located along each side of the proposed outline (``engines.tray_rim``), and the distance
of those edge points from the outline is the re-projection error, in frame pixels and in
tray-image pixels. A corner dragged a few pixels off shows up as a large error on its
two sides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from calibration.profile import TrayProfile
from engines.tray_detection import TrayNotFound, detect_tray, order_corners
from engines.tray_geometry import TRAY_SIZE, TrayGeometry
from engines.tray_rim import SIDES, sample_rim, to_gray

__all__ = ["TrayNotFound", "TrayCriteria", "Reprojection", "TrayCalibration",
           "detect_corners", "reprojection_error", "pixel_size_mm", "calibrate_tray"]


@dataclass(frozen=True)
class TrayCriteria:
    """Pass criteria for the tray geometry."""

    max_rms_px: float = 1.5           # frame pixels, rim edge to the outline
    max_side_offset_px: float = 3.0   # frame pixels, median per side
    min_found_fraction: float = 0.6   # of rim samples with a clear edge near the outline

    def describe(self) -> str:
        return (f"tray rim within {self.max_rms_px:g} px RMS of the outline (every side's "
                f"median within {self.max_side_offset_px:g} px), rim found on at least "
                f"{self.min_found_fraction:.0%} of the outline")


@dataclass(frozen=True)
class Reprojection:
    """Rim edge points against the outline: frame pixels (signed: + outside the outline)."""

    rms_px: float
    max_px: float
    rms_tray_px: float
    side_median_px: dict[str, float]
    found_fraction: float
    edge_points: np.ndarray = field(repr=False, compare=False)  # N x 2, frame pixels


def detect_corners(frame: np.ndarray) -> np.ndarray:
    """The tray's four outer corners (top-left, top-right, bottom-right, bottom-left of the
    tray image), frame pixels, 4 x 2. Raises TrayNotFound with what to fix."""
    return detect_tray(frame).corner_array


def reprojection_error(frame: np.ndarray, geometry: TrayGeometry,
                       search_px: float | None = None, samples: int = 96) -> Reprojection:
    """How far the rim's outer edge lies from the outline of ``geometry``."""
    ratio = geometry.pixel_size_ratio()
    search = search_px if search_px is not None else max(12.0, 24.0 * ratio)
    sides = sample_rim(to_gray(frame), geometry.corner_array, search_px=search, samples=samples)
    offsets = np.concatenate([side.offsets for side in sides])
    found = np.isfinite(offsets)
    medians = {}
    for name, side in zip(SIDES, sides):
        valid = side.offsets[np.isfinite(side.offsets)]
        medians[name] = float(np.median(valid)) if len(valid) >= 8 else float("nan")
    if found.sum() == 0:
        nan = float("nan")
        return Reprojection(nan, nan, nan, medians, 0.0, np.zeros((0, 2)))
    residual = offsets[found]
    rms = float(np.sqrt(np.mean(residual ** 2)))
    points = np.concatenate([side.found_points() for side in sides])
    # The same residual measured in the tray image, through the homography.
    tray_points = geometry.tray_points(points)
    first, last = -0.5, geometry.size - 0.5
    side_of_point = np.concatenate([np.full(int(np.isfinite(side.offsets).sum()), index)
                                    for index, side in enumerate(sides)])
    targets = np.array([first, last, last, first])
    axis = np.array([1, 0, 1, 0])  # top/bottom: y; right/left: x
    tray_residual = tray_points[np.arange(len(points)), axis[side_of_point]] \
        - targets[side_of_point]
    return Reprojection(rms_px=rms, max_px=float(np.abs(residual).max()),
                        rms_tray_px=float(np.sqrt(np.mean(tray_residual ** 2))),
                        side_median_px=medians, found_fraction=float(found.mean()),
                        edge_points=points)


def pixel_size_mm(geometry: TrayGeometry, tray_size_mm: tuple[float, float]
                  ) -> tuple[float, tuple[float, float]]:
    """(mm per frame pixel averaged over the four sides, (mm per tray-image pixel in x,
    in y)). ``tray_size_mm`` is the tray's outer (width, height) along its top and left
    sides as the tray image shows them."""
    width_mm, height_mm = (float(v) for v in tray_size_mm)
    if width_mm <= 0 or height_mm <= 0:
        raise ValueError(f"the tray size must be positive millimetres, got {tray_size_mm}")
    corners = geometry.corner_array
    lengths = np.linalg.norm(np.roll(corners, -1, axis=0) - corners, axis=1)
    per_side = np.array([width_mm, height_mm, width_mm, height_mm]) / lengths
    return float(per_side.mean()), (width_mm / geometry.size, height_mm / geometry.size)


@dataclass(frozen=True)
class TrayCalibration:
    """The result of the geometry step: what the profile stores, and whether it passed."""

    geometry: TrayGeometry
    corners_source: str                   # "automatic" or "adjusted"
    detected_corners: tuple[tuple[float, float], ...] | None
    reprojection: Reprojection
    frame_size: tuple[int, int]
    tray_size_mm: tuple[float, float] | None
    mm_per_frame_pixel: float | None
    mm_per_tray_pixel: tuple[float, float] | None
    criteria: TrayCriteria
    failures: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_profile(self) -> TrayProfile:
        return TrayProfile(
            corners=self.geometry.corners, frame_size=self.frame_size,
            size=self.geometry.size, corners_source=self.corners_source,
            tray_size_mm=self.tray_size_mm, mm_per_frame_pixel=self.mm_per_frame_pixel,
            mm_per_tray_pixel=self.mm_per_tray_pixel,
            reprojection_error_px=self.reprojection.rms_px
            if np.isfinite(self.reprojection.rms_px) else None)


def calibrate_tray(frame: np.ndarray, corners: object = None, *,
                   tray_size_mm: tuple[float, float] | None = None, size: int = TRAY_SIZE,
                   criteria: TrayCriteria = TrayCriteria()) -> TrayCalibration:
    """Check ``corners`` (the technician's, any order) against the rim in ``frame``; None
    detects them. Raises TrayNotFound only when detection was asked for and fails."""
    frame = np.asarray(frame)
    detected = None
    if corners is None:
        detected_array = detect_corners(frame)
        detected = tuple(map(tuple, detected_array.tolist()))
        chosen, source = detected_array, "automatic"
    else:
        chosen, source = order_corners(np.asarray(corners, np.float64)), "adjusted"
    geometry = TrayGeometry.from_array(chosen, size)  # ValueError: not a convex quad
    reprojection = reprojection_error(frame, geometry)
    failures = []
    if reprojection.found_fraction < criteria.min_found_fraction:
        failures.append(f"the rim was found on only {reprojection.found_fraction:.0%} of the "
                        f"outline: move the corners onto the tray's outer edge, clear the rim")
    elif reprojection.rms_px > criteria.max_rms_px:
        failures.append(f"re-projection error {reprojection.rms_px:.2f} px RMS exceeds "
                        f"{criteria.max_rms_px:g} px: move the corners onto the tray's outer "
                        f"edge")
    off = [f"{side} {offset:+.1f} px" for side, offset in reprojection.side_median_px.items()
           if not np.isfinite(offset) or abs(offset) > criteria.max_side_offset_px]
    if off and reprojection.found_fraction >= criteria.min_found_fraction:
        failures.append(f"outline off the rim on: {', '.join(off)}")
    mm_frame = mm_tray = None
    if tray_size_mm is not None:
        mm_frame, mm_tray = pixel_size_mm(geometry, tray_size_mm)
    height, width = frame.shape[:2]
    return TrayCalibration(
        geometry=geometry, corners_source=source, detected_corners=detected,
        reprojection=reprojection, frame_size=(int(width), int(height)),
        tray_size_mm=None if tray_size_mm is None else tuple(float(v) for v in tray_size_mm),
        mm_per_frame_pixel=mm_frame, mm_per_tray_pixel=mm_tray, criteria=criteria,
        failures=tuple(failures))
