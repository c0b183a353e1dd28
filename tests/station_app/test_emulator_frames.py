"""Synthetic frames for the emulated camera: one tray pose, all usable, made once."""

from __future__ import annotations

import cv2
import numpy as np

from engines.tray_detection import detect_tray
from engines.tray_geometry import TrayGeometry, mean_corner_error
from station_app.commands.emulator_frames import STATION_TRAY_CORNERS, ensure_emulator_frames


def test_frames_share_the_station_pose_and_are_made_once(tmp_path):
    folder = ensure_emulator_frames(tmp_path / "frames", count=2)
    frames = sorted(folder.glob("*.bmp"))
    assert [path.name for path in frames] == ["frame-00.bmp", "frame-01.bmp"]
    assert set(folder.iterdir()) == set(frames)  # nothing else for the emulator to load
    station = TrayGeometry.from_array(STATION_TRAY_CORNERS)
    for path in frames:
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        assert rgb.shape == (3000, 4096, 3)
        assert mean_corner_error(detect_tray(rgb), station) < 1.0
    first, second = (cv2.imread(str(path)) for path in frames)
    assert not np.array_equal(first, second)  # different items

    stamps = [path.stat().st_mtime_ns for path in frames]
    ensure_emulator_frames(tmp_path / "frames", count=2)
    assert [path.stat().st_mtime_ns for path in frames] == stamps
