"""Which cameras are present, real and emulated, without opening any of them."""

from __future__ import annotations

from drivers.camera.base import CameraInfo


def list_cameras() -> list[CameraInfo]:
    """Every camera pylon enumerates (USB3, GigE, emulated), sorted by serial number.

    Imports pypylon on first use, so call `enable_emulation` before it where wanted.
    """
    from drivers.camera.basler import PylonDevices, camera_info

    return sorted((camera_info(d) for d in PylonDevices().enumerate()), key=lambda c: c.serial)
