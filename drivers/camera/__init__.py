"""Cameras: the interface the station uses, the Basler driver, its emulator, a replay camera.

The Basler classes load pypylon, which reads ``PYLON_CAMEMU`` only when first imported; so
they are imported on first use (``from drivers.camera import BaslerCamera``), leaving time
to call `enable_emulation` before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from drivers.camera.base import Camera, CameraInfo, CameraSettings, Frame
from drivers.camera.convert import SUPPORTED_PIXEL_FORMATS
from drivers.camera.emulation_switch import enable_emulation
from drivers.camera.errors import (
    CameraError,
    CameraNotFound,
    CameraRemoved,
    GrabFailed,
    GrabTimeout,
    SettingRejected,
)
from drivers.camera.replay import ReplayCamera

if TYPE_CHECKING:
    from drivers.camera.basler import BaslerCamera
    from drivers.camera.discovery import list_cameras
    from drivers.camera.emulated import EmulatedBaslerCamera

_LOADED_ON_FIRST_USE = {
    "BaslerCamera": "drivers.camera.basler",
    "EmulatedBaslerCamera": "drivers.camera.emulated",
    "list_cameras": "drivers.camera.discovery",
}

__all__ = [
    "BaslerCamera", "Camera", "CameraError", "CameraInfo", "CameraNotFound", "CameraRemoved",
    "CameraSettings", "EmulatedBaslerCamera", "Frame", "GrabFailed", "GrabTimeout",
    "ReplayCamera", "SUPPORTED_PIXEL_FORMATS", "SettingRejected", "enable_emulation",
    "list_cameras",
]


def __getattr__(name: str) -> Any:
    if name in _LOADED_ON_FIRST_USE:
        import importlib

        return getattr(importlib.import_module(_LOADED_ON_FIRST_USE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
