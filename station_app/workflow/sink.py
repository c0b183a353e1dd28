"""Where the workflow hands what it captured: the capture store satisfies ``CaptureSink``.

The workflow saves the frame the moment it exists, before processing, so a model error,
a quality gate or a crash later never loses it; outcome and confirmation follow by id.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Literal, Protocol

from drivers.camera import Frame
from engines.inspection import CaptureScores
from engines.item_extraction import ExtractedItem
from engines.quality_gates import QualityIssue


@dataclass(frozen=True)
class CaptureRecord:
    """One frame as it came off the camera, and who took it of what, when and how."""

    station_id: str
    operator: str
    item_identifier: str
    trigger: str
    captured_utc: str
    frame: Frame
    lighting: dict[str, object] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class CaptureOutcome:
    """What processing made of a saved capture: scores, a quality refusal, or a failure."""

    kind: Literal["scored", "rejected", "failed"]
    extracted: ExtractedItem | None = None
    scores: CaptureScores | None = None
    issues: tuple[QualityIssue, ...] = ()
    error: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Confirmation:
    operator: str
    agree: bool
    severity: str
    defect_types: tuple[str, ...]
    verdict_label: str
    confirmed_utc: str


class CaptureSink(Protocol):
    def save(self, capture: CaptureRecord) -> str:
        """Store the capture durably; return its id."""

    def record_outcome(self, capture_id: str, outcome: CaptureOutcome) -> None: ...

    def confirm(self, capture_id: str, confirmation: Confirmation) -> None: ...


class MemoryCaptureSink:
    """A sink in memory (tests, headless demo); ``log`` keeps the order calls arrived in."""

    def __init__(self) -> None:
        self.captures: dict[str, CaptureRecord] = {}
        self.outcomes: dict[str, CaptureOutcome] = {}
        self.confirmations: dict[str, Confirmation] = {}
        self.log: list[tuple[str, str]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def save(self, capture: CaptureRecord) -> str:
        with self._lock:
            capture_id = f"capture-{next(self._ids):06d}"
            self.captures[capture_id] = capture
            self.log.append(("save", capture_id))
            return capture_id

    def record_outcome(self, capture_id: str, outcome: CaptureOutcome) -> None:
        with self._lock:
            self._require(capture_id)
            self.outcomes[capture_id] = outcome
            self.log.append(("outcome", capture_id))

    def confirm(self, capture_id: str, confirmation: Confirmation) -> None:
        with self._lock:
            self._require(capture_id)
            self.confirmations[capture_id] = confirmation
            self.log.append(("confirm", capture_id))

    def _require(self, capture_id: str) -> None:
        if capture_id not in self.captures:
            raise KeyError(f"no capture {capture_id!r} was saved")
