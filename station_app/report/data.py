"""What a report is made of: one row per capture, plus the run's context, as plain data.

The replay command fills these from a data set or the capture store; tests fabricate them.
Nothing here computes anything, so a report can be rebuilt from saved rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Mapping, Sequence

import numpy as np

from engines.verdict import DecisionThresholds
from station_app.report.images import ImageSource

Verdict = Literal["OK", "REVIEW", "DAMAGED"]


@dataclass
class CaptureImages:
    """Pictures of one capture: arrays (RGB) or file paths; any may be missing.

    ``heatmap`` is a 2-D float array in [0, 1] or a grayscale image file, drawn over the
    item crop (``heatmap_on="crop"``) or the tray image (``"tray"``).
    """

    tray: ImageSource = None
    heatmap: ImageSource = None
    crop: ImageSource = None
    references: Sequence[ImageSource] = ()
    heatmap_on: Literal["crop", "tray"] = "crop"


@dataclass
class CaptureRow:
    """One scored capture with its ground truth (a Kaputt query row plus model outputs)."""

    capture_id: str
    item_identifier: str
    material: str
    defect: bool
    major: bool
    scores: Mapping[str, float]          # scorer name -> score in [0, 1]
    defect_types: Sequence[str] = ()
    lookalike: bool = False              # non-defective with damage-like artwork
    verdict: Verdict | None = None       # as the station decided it, if it did
    images: CaptureImages = field(default_factory=CaptureImages)

    @property
    def severity(self) -> str:
        return "major" if self.major else "minor" if self.defect else "non-defective"


@dataclass
class SkippedCapture:
    """A capture that could not be scored, and why (image missing, unreadable, rejected)."""

    capture_id: str
    reason: str
    path: str = ""


@dataclass
class ReportData:
    """One replay run: its captures and the context the report header shows.

    ``scorers`` orders the rows of the metrics table (default: the score keys of the first
    capture); ``primary_scorer`` is the one the histograms, thresholds and galleries use
    (default: the first scorer). ``thresholds`` are the station's (ok_below,
    damaged_above), if the run used some.
    """

    title: str
    captures: Sequence[CaptureRow]
    scorers: Sequence[str] = ()
    primary_scorer: str | None = None
    data_set: str = ""
    created: str = ""
    model_versions: Mapping[str, str] = field(default_factory=dict)
    thresholds: tuple[float, float] | None = None
    skipped: Sequence[SkippedCapture] = ()
    bootstrap_resamples: int = 1000
    seed: int = 0
    gallery_size: int = 8

    def scorer_names(self) -> list[str]:
        if self.scorers:
            return list(self.scorers)
        return list(self.captures[0].scores) if self.captures else []

    def primary(self) -> str:
        names = self.scorer_names()
        return self.primary_scorer or (names[0] if names else "")

    def scores(self, scorer: str) -> np.ndarray:
        """Scores of one scorer in capture order; NaN where a capture has none."""
        return np.array([float(row.scores.get(scorer, math.nan)) for row in self.captures])

    def labels(self) -> tuple[np.ndarray, np.ndarray]:
        """(defect, major) as boolean arrays in capture order."""
        defect = np.array([bool(row.defect) for row in self.captures], dtype=bool)
        major = np.array([bool(row.major) for row in self.captures], dtype=bool)
        return defect, major

    def verdicts(self, scorer: str | None = None) -> list[str | None]:
        """The recorded verdicts, or ones derived from ``thresholds`` where none recorded."""
        scores = self.scores(scorer or self.primary())
        result = []
        for row, score in zip(self.captures, scores):
            if row.verdict is not None:
                result.append(row.verdict)
            elif self.thresholds is not None and math.isfinite(score):
                result.append(verdict_for(score, *self.thresholds))
            else:
                result.append(None)
        return result


def verdict_for(score: float, ok_below: float, damaged_above: float) -> Verdict:
    """The station rule (``engines.verdict``): OK below ok_below, DAMAGED at or above
    damaged_above, REVIEW between."""
    return DecisionThresholds(ok_below, damaged_above).label(score)
