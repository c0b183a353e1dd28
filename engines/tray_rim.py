"""Finding the tray's outer rim edge near where it is expected.

Both automatic tray detection (refining a rough outline to sub-pixel corners) and the
per-frame alignment check (is the tray still where calibration put it?) ask the same
question along each side of a quadrilateral: where, along the outward normal, is the
strongest brightness step? Profiles are sampled straight from the frame, averaged
along the edge, so no full-frame filtering is paid per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SIDES = ("top", "right", "bottom", "left")
STEP_HALF_WIDTH = 2  # pixels averaged on each side of a candidate edge position
OUTER_EDGE_FRACTION = 0.25  # an outer step this fraction of the strongest still counts


@dataclass(frozen=True)
class EdgeSamples:
    """Where the rim edge was found along one side: points on the expected line, offsets
    (pixels along the outward normal, nan where no clear edge) and edge strength."""

    points: np.ndarray
    normal: np.ndarray
    offsets: np.ndarray
    strength: np.ndarray

    def found_points(self) -> np.ndarray:
        valid = np.isfinite(self.offsets)
        return self.points[valid] + self.offsets[valid, None] * self.normal


def to_gray(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return frame
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def _outward_normal(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    direction = (end - start) / np.linalg.norm(end - start)
    # Corners run clockwise on screen (y down), so the outside is on the left-hand turn.
    return np.array([direction[1], -direction[0]])


def sample_side(gray: np.ndarray, start: np.ndarray, end: np.ndarray, search_px: float,
                samples: int = 64, margin: float = 0.08, tangential_px: float = 3.0,
                min_step: float = 12.0) -> EdgeSamples:
    """Locate the strongest step along the outward normal at points spaced along a side."""
    start = np.asarray(start, dtype=np.float64)
    end = np.asarray(end, dtype=np.float64)
    direction = (end - start) / np.linalg.norm(end - start)
    normal = _outward_normal(start, end)
    fractions = np.linspace(margin, 1.0 - margin, samples)
    points = start + fractions[:, None] * (end - start)
    steps = np.arange(-search_px, search_px + 0.5, 1.0)
    tangents = np.linspace(-tangential_px, tangential_px, 5)
    # grid: samples × tangents × steps
    grid = (points[:, None, None, :] + tangents[None, :, None, None] * direction
            + steps[None, None, :, None] * normal)
    map_x = grid[..., 0].reshape(samples * len(tangents), len(steps)).astype(np.float32)
    map_y = grid[..., 1].reshape(samples * len(tangents), len(steps)).astype(np.float32)
    values = cv2.remap(gray, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    profiles = values.reshape(samples, len(tangents), len(steps)).astype(np.float32).mean(axis=1)
    # Step across each position: mean of the next few samples minus the previous few.
    # Robust to soft (defocused, resampled) edges, where a 1-pixel gradient is weak.
    half = STEP_HALF_WIDTH
    cumulative = np.concatenate([np.zeros((samples, 1), np.float32),
                                 np.cumsum(profiles, axis=1)], axis=1)
    derivative = np.zeros_like(profiles)
    positions = np.arange(half, len(steps) - half)
    after = (cumulative[:, positions + half + 1] - cumulative[:, positions + 1]) / half
    before = (cumulative[:, positions] - cumulative[:, positions - half]) / half
    derivative[:, positions] = after - before
    # The rim's outer boundary is the outermost strong step, bright-to-dark or the other
    # way (a lit lip against a shaded floor, or a dark tote on a light one); the rim's
    # inner edge and the item lie further in. So take the last local maximum of the step
    # size that is at least OUTER_EDGE_FRACTION as strong as the row's strongest.
    signed = np.abs(derivative)
    threshold = np.maximum(OUTER_EDGE_FRACTION * signed.max(axis=1, keepdims=True), min_step)
    padded = np.pad(signed, ((0, 0), (1, 1)), constant_values=-np.inf)
    peaks = (signed >= padded[:, :-2]) & (signed >= padded[:, 2:]) & (signed >= threshold)
    has_peak = peaks.any(axis=1)
    best = np.where(has_peak, peaks.shape[1] - 1 - np.argmax(peaks[:, ::-1], axis=1),
                    signed.argmax(axis=1))
    strength = signed[np.arange(samples), best]
    offsets = steps[best].astype(np.float64)
    inner = (best > 0) & (best < len(steps) - 1)
    rows = np.nonzero(inner)[0]
    left = signed[rows, best[rows] - 1]
    centre = signed[rows, best[rows]]
    right = signed[rows, best[rows] + 1]
    curvature = left - 2 * centre + right
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(curvature < 0, 0.5 * (left - right) / curvature, 0.0)
    offsets[rows] += np.clip(shift, -0.5, 0.5)
    offsets[(strength < min_step) | ~inner] = np.nan
    return EdgeSamples(points=points, normal=normal, offsets=offsets, strength=strength)


def sample_rim(gray: np.ndarray, corners: np.ndarray, search_px: float,
               samples: int = 64) -> list[EdgeSamples]:
    """Edge samples for the four sides top, right, bottom, left of a corner quad."""
    corners = np.asarray(corners, dtype=np.float64)
    return [sample_side(gray, corners[i], corners[(i + 1) % 4], search_px, samples)
            for i in range(4)]


def fit_line(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Robust line through points: (point on line, unit direction)."""
    line = cv2.fitLine(points.astype(np.float32), cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
    return line[2:4].astype(np.float64), line[0:2].astype(np.float64)


def intersect(line_a: tuple[np.ndarray, np.ndarray],
              line_b: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    (pa, da), (pb, db) = line_a, line_b
    matrix = np.array([da, -db]).T
    t = np.linalg.solve(matrix, pb - pa)
    return pa + t[0] * da
