"""Automatic capture: an item is in the tray and the scene has been still for a moment.

Live-view frames are shrunk to a small grey image; "item present" means the frame
differs from the empty tray, "still" means it hardly differs from the previous frame.
After firing, the detector waits for the tray to be emptied before it can fire again,
so one placed item gives one capture.
"""

from __future__ import annotations

import cv2
import numpy as np

from station_app.workflow.commands import Trigger, TriggerSource

THUMBNAIL_WIDTH = 160


def _thumbnail(frame: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
    height = max(1, round(grey.shape[0] * THUMBNAIL_WIDTH / grey.shape[1]))
    small = cv2.resize(grey, (THUMBNAIL_WIDTH, height), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(small.astype(np.float32), (5, 5), 0)


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
            self._still_count, self._fired = 0, False
            return None
        self._still_count = 0 if moving else self._still_count + 1
        if self._fired or self._still_count < self.still_frames:
            return None
        self._fired = True
        return Trigger(TriggerSource.AUTO)
