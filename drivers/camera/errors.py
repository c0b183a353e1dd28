"""Camera faults, as subclasses of the driver-wide errors so callers can catch either level."""

from __future__ import annotations

from collections.abc import Iterable

from drivers.errors import DeviceDisconnected, DeviceTimeout, DriverError


class CameraError(DriverError):
    """The camera could not do what was asked; the message names the camera and why."""


class CameraNotFound(CameraError):
    """No camera with the requested serial number is present."""

    def __init__(self, wanted: str | None, present: Iterable[str]) -> None:
        self.wanted = wanted
        self.present = tuple(present)
        listed = ", ".join(self.present) if self.present else "none"
        what = f"camera with serial {wanted!r}" if wanted else "any camera"
        super().__init__(f"no {what} found; cameras present: {listed}")


class GrabTimeout(CameraError, DeviceTimeout):
    """No frame arrived within the timeout (not triggered, or the transport stalled)."""


class GrabFailed(CameraError):
    """A frame arrived but its buffer is broken (incomplete transfer, lost packets)."""

    def __init__(self, serial: str, error_code: int, description: str) -> None:
        self.serial = serial
        self.error_code = error_code
        self.description = description
        super().__init__(
            f"camera {serial}: grab failed (error 0x{error_code & 0xFFFFFFFF:08X}): {description}"
        )


class CameraRemoved(CameraError, DeviceDisconnected):
    """The camera vanished (cable pulled, power lost); it is re-attached when it returns."""


class SettingRejected(CameraError):
    """The camera refused a setting (out of range, unsupported, not writable)."""
