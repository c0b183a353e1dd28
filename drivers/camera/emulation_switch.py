"""Turning on pypylon's camera emulation, which must happen before pypylon is imported.

pylon reads ``PYLON_CAMEMU`` (how many emulated cameras to offer) once, when its
transport layers load; setting it later has no effect. This module imports nothing from
pypylon so the station can call `enable_emulation` first thing.
"""

from __future__ import annotations

import os
import sys

from drivers.camera.errors import CameraError

ENVIRONMENT_VARIABLE = "PYLON_CAMEMU"


def emulated_camera_count() -> int:
    """How many emulated cameras pylon offers (or will offer once imported)."""
    try:
        return int(os.environ.get(ENVIRONMENT_VARIABLE, "0"))
    except ValueError:
        return 0


def enable_emulation(count: int = 1) -> None:
    """Ask pylon for `count` emulated cameras ("Basler Emulation (0815-0000)", …).

    Raises `CameraError` when pypylon is already loaded with fewer: restart the process
    with ``PYLON_CAMEMU`` set instead.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if emulated_camera_count() >= count:
        return
    if "pypylon" in sys.modules:
        raise CameraError(
            f"pypylon is already loaded with {emulated_camera_count()} emulated camera(s); "
            f"set {ENVIRONMENT_VARIABLE}={count} before the process starts"
        )
    os.environ[ENVIRONMENT_VARIABLE] = str(count)
