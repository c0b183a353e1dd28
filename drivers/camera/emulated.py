"""pypylon's camera emulator serving our own image files, with the faults a real camera has.

The emulator ("Basler Emulation (0815-0000)", device class ``BaslerCamEmu``) runs the real
pylon stack, so `EmulatedBaslerCamera` is the real `BaslerCamera` plus the few settings that
make the emulator send our files (``TestImageSelector=Off`` first, or its test image wins;
then ``ImageFileMode=On`` and ``ImageFilename``: a file, or a folder served in sorted order,
cycling). Files it reads: PNG, BMP, TIFF; a file smaller than the region comes back at the
file's size, a larger one is cropped at the region's offset. It mosaics colour images for
Bayer formats itself (RGGB with R at (0, 0) for ``BayerRG8``), so demosaicing is tested too.

What the emulator cannot do, and how this module stands in for it (used by tests and by
``station-app demo``):
- It has no I/O lines: it starts a frame on the ``TriggerSoftware`` command whatever
  ``TriggerSource`` says. `simulate_line_edge` sends that command to stand for an edge on
  Line1, after the driver armed the hardware trigger.
- It cannot be unplugged. `simulate_removal` hides the serial number from enumeration
  (`UnpluggableDevices`) and destroys the pylon device under the driver, which is what the
  driver sees of a removal (no device any more); `simulate_return` shows the serial again.
  The driver's other removal signals (pylon's removal callback, `IsCameraDeviceRemoved`)
  are only raised by real cameras.
- Failed buffers: the emulator's own ``ForceFailedBuffer`` command (`inject_failed_buffers`).
"""

from __future__ import annotations

from pathlib import Path

from pypylon import pylon

from drivers.camera.basler import BaslerCamera, PylonDevices
from drivers.camera.errors import CameraError

EMULATOR_DEVICE_CLASS = "BaslerCamEmu"


class UnpluggableDevices(PylonDevices):
    """Enumeration that can pretend a camera is unplugged (it hides the serial number)."""

    def __init__(self) -> None:
        self._hidden: set[str] = set()

    def unplug(self, serial: str) -> None:
        self._hidden.add(serial)

    def plug_in(self, serial: str) -> None:
        self._hidden.discard(serial)

    def enumerate(self) -> list[pylon.DeviceInfo]:
        return [d for d in super().enumerate() if d.GetSerialNumber() not in self._hidden]


class EmulatedBaslerCamera(BaslerCamera):
    """The Basler driver on an emulated camera that serves images from `image_source`.

    `serial` None takes the first emulated camera (real cameras are never picked).
    """

    def __init__(
        self,
        image_source: str | Path,
        serial: str | None = None,
        *,
        devices: UnpluggableDevices | None = None,
    ) -> None:
        self._image_source = Path(image_source).resolve()
        if not self._image_source.exists():
            raise CameraError(f"emulated camera: image source {self._image_source} does not exist")
        self._unpluggable = devices or UnpluggableDevices()
        serial = serial or _first_emulated_serial(self._unpluggable)
        super().__init__(serial, devices=self._unpluggable)

    @property
    def image_source(self) -> Path:
        return self._image_source

    def _configure_device(self) -> None:
        super()._configure_device()
        self._node("TestImageSelector").SetValue("Off")
        self._node("ImageFileMode").SetValue("On")
        self._node("ImageFilename").SetValue(str(self._image_source))

    def simulate_line_edge(self) -> None:
        """Stand-in for an edge on the trigger line (the emulator has no I/O lines)."""
        with self._lock:
            self._require_open()
            if not self.hardware_trigger_armed:
                raise CameraError("simulated line edge: the camera is not armed for it")
            self._node("TriggerSoftware").Execute()

    def simulate_removal(self) -> None:
        """Behave as if the cable were pulled: gone from enumeration, device destroyed."""
        with self._lock:
            self._require_open()
            self._unpluggable.unplug(self.info.serial)
            self._instant.DestroyDevice()

    def simulate_return(self) -> None:
        """The cable is back: the serial enumerates again (the driver re-attaches).

        Takes no lock, so another thread can call it while `reattach` is polling.
        """
        self._unpluggable.plug_in(self.info.serial)

    def inject_failed_buffers(self, count: int = 1) -> None:
        """Make the emulator deliver the next `count` buffers as failed (incomplete)."""
        with self._lock:
            self._require_open()
            self._node("ForceFailedBufferCount").SetValue(count)
            self._node("ForceFailedBuffer").Execute()


def _first_emulated_serial(devices: PylonDevices) -> str:
    found = devices.enumerate()
    for device_info in found:
        if device_info.GetDeviceClass() == EMULATOR_DEVICE_CLASS:
            return device_info.GetSerialNumber()
    raise CameraError(
        "no emulated Basler camera: set PYLON_CAMEMU=1 before pypylon is imported "
        "(drivers.camera.emulation_switch.enable_emulation)"
    )
