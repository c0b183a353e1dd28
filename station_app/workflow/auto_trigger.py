"""Automatic capture: an item is in the tray and the scene has been still for a moment.

Live-view frames are shrunk to a small grey image; "item present" means the frame
differs from the empty tray, "still" means it hardly differs from the previous frame.
After firing, the detector waits for the tray to be emptied before it can fire again,
so one placed item gives one capture.

The workflow feeds the detector from its live view (``InspectionWorkflow(auto_trigger=...)``):
the first live-view frame after an item code is scanned is taken as the empty tray, because
the associate scans the item first and then places it. An item already lying in the tray
when its code is scanned therefore never fires the auto trigger; the associate presses
Capture (or the pedal) instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from station_app.workflow.commands import Trigger, TriggerSource

THUMBNAIL_WIDTH = 160


def shrink_for_live_view(frame: np.ndarray) -> np.ndarray:
    """The small grey image the detector compares (done where the frame is grabbed, so only
    a few kilobytes travel on); shrinking it again changes nothing."""
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
    if grey.shape[1] == THUMBNAIL_WIDTH:
        return grey
    height = max(1, round(grey.shape[0] * THUMBNAIL_WIDTH / grey.shape[1]))
    return cv2.resize(grey, (THUMBNAIL_WIDTH, height), interpolation=cv2.INTER_AREA)


def _thumbnail(frame: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(shrink_for_live_view(frame).astype(np.float32), (5, 5), 0)


@dataclass(frozen=True)
class AutoTriggerSettings:
    """Automatic capture for :class:`~station_app.workflow.InspectionWorkflow`: a live-view
    frame every ``interval_s`` while waiting for the item; capture once the item has been
    still for ``still_frames`` frames. The last three are :class:`StillnessDetector`'s
    thresholds."""

    enabled: bool = True
    interval_s: float = 0.3
    still_frames: int = 4
    presence_fraction: float = 0.01
    change_level: float = 12.0
    motion_fraction: float = 0.002

    def __post_init__(self) -> None:
        if not 0.01 <= self.interval_s <= 10:
            raise ValueError(f"interval_s must be 0.01 to 10 seconds, got {self.interval_s!r}")
        if self.still_frames < 1:
            raise ValueError(f"still_frames must be >= 1, got {self.still_frames!r}")
        for name in ("presence_fraction", "motion_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)!r}")
        if not 0 < self.change_level < 255:
            raise ValueError(f"change_level must be 0 to 255 grey levels, "
                             f"got {self.change_level!r}")

    def detector(self, empty_tray: np.ndarray) -> StillnessDetector:
        """A detector with these thresholds and ``empty_tray`` as the reference."""
        return StillnessDetector(empty_tray, self.still_frames, self.presence_fraction,
                                 self.change_level, self.motion_fraction)


class StillnessDetector:
    """Feed live-view frames to :meth:`observe`; it returns ``Trigger(AUTO)`` once per item."""

    def __init__(self, empty_tray: np.ndarray, still_frames: int = 5,
                 presence_fraction: float = 0.01, change_level: float = 12.0,
                 motion_fraction: float = 0.002) -> None:
        if still_frames < 1:
            raise ValueError(f"still_frames must be >= 1, got {still_frames}")
        self.empty = _thumbnail(empty_tray)
        self.still_frames = still_frames
        self.presence_fraction = presence_fraction
        self.change_level = change_level
        self.motion_fraction = motion_fraction
        self._previous: np.ndarray | None = None
        self._still_count = 0
        self._fired = False
        self._await_motion = False

    def rearm_after_motion(self) -> None:
        """Fire again for the item still in the tray, but only once it has moved and
        settled (after a rejected capture the associate repositions the item; one that is
        left alone is not captured again and again)."""
        self._fired, self._await_motion, self._still_count = False, True, 0

    def _changed_fraction(self, a: np.ndarray, b: np.ndarray) -> float:
        return float(np.count_nonzero(np.abs(a - b) > self.change_level)) / a.size

    def observe(self, frame: np.ndarray) -> Trigger | None:
        small = _thumbnail(frame)
        if small.shape != self.empty.shape:
            raise ValueError(f"live-view frame {frame.shape} does not match the empty tray")
        present = self._changed_fraction(small, self.empty) >= self.presence_fraction
        moving = (self._previous is None
                  or self._changed_fraction(small, self._previous) >= self.motion_fraction)
        self._previous = small
        if not present:
            self._still_count, self._fired, self._await_motion = 0, False, False
            return None
        if moving:
            self._await_motion = False
        self._still_count = 0 if moving else self._still_count + 1
        if self._fired or self._await_motion or self._still_count < self.still_frames:
            return None
        self._fired = True
        return Trigger(TriggerSource.AUTO)
