"""The capture record of DESIGN.md §3 as plain data: what one capture was, and what a person said.

A record is built by the workflow from the capture's metadata and its ``CaptureScores``;
the store fills in the file paths when it writes the images. Everything is immutable so
a record read back can be compared with the one written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, Mapping

from engines.taxonomy import DEFECT_TYPES, MATERIALS, SEVERITIES

Severity = Literal["none", "minor", "major"]

# Image files of a capture, by kind. The tray crop, its item mask and the item crop are
# what export and the reference gallery need; the raw frame and the heatmap are kept for
# audit and display and may be absent (a replayed tray has no frame; no heatmap without
# the supervised scorer).
IMAGE_KINDS: tuple[str, ...] = ("frame", "tray", "mask", "item_crop", "heatmap")
REQUIRED_IMAGE_KINDS: tuple[str, ...] = ("tray", "mask", "item_crop")


def utc_now() -> str:
    """ISO-8601 UTC with microseconds: sorts as text, which keeps SQL ordering simple."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def utc_text(moment: str | datetime) -> str:
    """A time as ``utc_now`` writes it; a time without a zone is refused, not guessed."""
    parsed = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    if parsed.tzinfo is None:
        raise ValueError(f"time {moment!s} has no time zone; give UTC (e.g. {utc_now()})")
    return parsed.astimezone(timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class ModelOutputs:
    """Every model output of one capture; NaN where a model did not run, None where a
    value does not apply (no references: no reference score; no thresholds: no verdict)."""

    p_any: float
    p_major: float
    p_types: Mapping[str, float]
    reference_score: float | None
    fused: float
    verdict: str | None                    # "OK", "REVIEW", "DAMAGED"
    likely_types: tuple[str, ...] = ()
    verdict_reason: str = ""
    item_p_any: float | None = None        # the item-crop scorer's own view; None: not run
    item_p_major: float | None = None

    @classmethod
    def from_scores(cls, scores: Any) -> ModelOutputs:
        """From ``engines.inspection.CaptureScores`` (duck-typed, so records need no runtime)."""
        verdict = scores.verdict
        item = getattr(scores, "item", None)
        return cls(
            p_any=float(scores.p_any), p_major=float(scores.p_major),
            p_types={name: float(p) for name, p in scores.p_types.items()},
            reference_score=None if scores.reference_score is None else float(scores.reference_score),
            fused=float(scores.fused),
            verdict=None if verdict is None else verdict.label,
            likely_types=() if verdict is None else tuple(verdict.likely_types),
            verdict_reason="" if verdict is None else verdict.reason,
            item_p_any=None if item is None else float(item.p_any),
            item_p_major=None if item is None else float(item.p_major),
        )


@dataclass(frozen=True)
class Confirmation:
    """The associate's judgement, the ground truth of a capture.

    ``agrees`` says whether they accepted the station's verdict (False: an override).
    """

    confirmed_by: str
    severity: Severity
    agrees: bool
    defect_types: tuple[str, ...] = ()
    confirmed_at: str = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        if not self.confirmed_by.strip():
            raise ValueError("a confirmation needs the operator who gave it")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {', '.join(SEVERITIES)}")
        unknown = [t for t in self.defect_types if t not in DEFECT_TYPES]
        if unknown:
            raise ValueError(f"unknown defect types {unknown}; allowed: {', '.join(DEFECT_TYPES)}")
        if self.severity == "none" and self.defect_types:
            raise ValueError("defect types given with severity 'none'; choose a severity or clear the types")
        object.__setattr__(self, "defect_types",
                           tuple(t for t in DEFECT_TYPES if t in self.defect_types))
        object.__setattr__(self, "confirmed_at", utc_text(self.confirmed_at))

    @property
    def defective(self) -> bool:
        return self.severity != "none"


@dataclass(frozen=True)
class CaptureRecord:
    """One capture: who, what, how it was taken, what the models said, and how long it took.

    ``files`` maps image kind to a path relative to the store root; the store sets it.
    """

    capture_id: str
    captured_at: str                      # ISO-8601 with zone; kept as UTC
    station_id: str
    operator: str
    item_identifier: str
    outputs: ModelOutputs
    item_material: str = "other"
    camera_settings: Mapping[str, Any] = field(default_factory=dict)
    lighting_level: float | None = None
    calibration_profile_version: str = ""
    model_versions: Mapping[str, str] = field(default_factory=dict)
    latencies_ms: Mapping[str, float] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    confirmation: Confirmation | None = None

    def __post_init__(self) -> None:
        for name in ("capture_id", "station_id", "operator", "item_identifier"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"capture record field {name} is empty")
        if not all(c.isalnum() or c in "-_." for c in self.capture_id) or self.capture_id[0] == ".":
            raise ValueError(f"capture id {self.capture_id!r} must be letters, digits, '-', '_' or '.' "
                             "(it names a folder)")
        if self.item_material not in MATERIALS:
            raise ValueError(f"material {self.item_material!r} is not one of {', '.join(MATERIALS)}")
        object.__setattr__(self, "captured_at", utc_text(self.captured_at))
        unknown = set(self.files) - set(IMAGE_KINDS)
        if unknown:
            raise ValueError(f"unknown image kinds {sorted(unknown)}; allowed: {', '.join(IMAGE_KINDS)}")

    @property
    def confirmed(self) -> bool:
        return self.confirmation is not None

    @property
    def captured_time(self) -> datetime:
        return datetime.fromisoformat(self.captured_at)

