"""Per-frame check that the tray is where the calibration profile says.

A bumped or swapped tray shifts every crop; scoring it anyway gives confident nonsense.
Each frame's rim is looked for near the calibrated outline; the frame is accepted only
when the rim edge sits within a few pixels of it on all four sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engines.tray_geometry import TrayGeometry
from engines.tray_rim import SIDES, sample_rim, to_gray

DEFAULT_TOLERANCE_PX = 4.0  # in tray-image pixels (2048 scale)
DEFAULT_MIN_SCORE = 0.6


class TrayMoved(RuntimeError):
    """The frame's tray is not where the calibration profile puts it."""


@dataclass(frozen=True)
class TrayAlignment:
    """How well the frame's rim matches the calibrated outline.

    ``score`` is the fraction of rim samples found within tolerance (1.0 = perfect);
    ``side_offsets_px`` the median rim displacement per side along its outward normal,
    in tray-image pixels (nan where no rim edge was seen).
    """

    score: float
    side_offsets_px: dict[str, float]
    tolerance_px: float
    min_score: float

    @property
    def aligned(self) -> bool:
        offsets = np.array(list(self.side_offsets_px.values()))
        return bool(self.score >= self.min_score and np.all(np.isfinite(offsets))
                    and np.all(np.abs(offsets) <= self.tolerance_px))

    def describe(self) -> str:
        parts = ", ".join(f"{side} {offset:+.1f} px" for side, offset
                          in self.side_offsets_px.items())
        return f"rim alignment {self.score:.2f} ({parts})"


def measure_alignment(frame: np.ndarray, geometry: TrayGeometry,
                      tolerance_px: float = DEFAULT_TOLERANCE_PX,
                      min_score: float = DEFAULT_MIN_SCORE,
                      search_tray_px: float = 40.0) -> TrayAlignment:
    """Look for the rim within ±search around the calibrated outline on every side."""
    to_frame = geometry.pixel_size_ratio()
    sides = sample_rim(to_gray(frame), geometry.corner_array, search_px=search_tray_px * to_frame,
                       samples=48)
    offsets = np.concatenate([side.offsets for side in sides]) / to_frame
    within = np.isfinite(offsets) & (np.abs(np.nan_to_num(offsets, nan=1e9)) <= tolerance_px)
    medians = {}
    for name, side in zip(SIDES, sides):
        valid = side.offsets[np.isfinite(side.offsets)]
        medians[name] = float(np.median(valid) / to_frame) if len(valid) >= 8 else float("nan")
    return TrayAlignment(score=float(within.mean()), side_offsets_px=medians,
                         tolerance_px=tolerance_px, min_score=min_score)


def verify_alignment(frame: np.ndarray, geometry: TrayGeometry, **options: float) -> TrayAlignment:
    """Measure alignment and raise TrayMoved when the tray is not where calibrated."""
    alignment = measure_alignment(frame, geometry, **options)
    if not alignment.aligned:
        raise TrayMoved(f"tray moved — recalibrate geometry ({alignment.describe()})")
    return alignment
