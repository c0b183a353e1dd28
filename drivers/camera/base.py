"""The camera interface the station uses: settings, frames, and the `Camera` base class.

Concrete cameras (Basler over pypylon, the replay camera) implement small ``_do_*`` hooks;
the public methods here hold the rules every camera shares (must be open, arguments valid,
one caller at a time), so the hooks stay short and the behaviour stays the same everywhere.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from drivers.camera.errors import CameraError

WhiteBalance = tuple[float, float, float]

HARDWARE_TRIGGER_ACTIVATIONS = ("RisingEdge", "FallingEdge")


@dataclass(frozen=True)
class CameraInfo:
    """Who a camera is, as enumeration reports it (no connection needed)."""

    serial: str
    model: str
    device_class: str
    user_name: str = ""
    vendor: str = ""


@dataclass(frozen=True)
class CameraSettings:
    """What the station controls on a camera; `None` width/height means the whole sensor.

    ``white_balance`` holds (red, green, blue) gains; cameras without balance ratios apply
    them in software after conversion to RGB.
    """

    exposure_us: float = 10_000.0
    gain_db: float = 0.0
    white_balance: WhiteBalance = (1.0, 1.0, 1.0)
    pixel_format: str = "BayerRG8"
    width: int | None = None
    height: int | None = None
    offset_x: int = 0
    offset_y: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.exposure_us) and self.exposure_us > 0):
            raise ValueError(f"exposure_us must be a positive number, got {self.exposure_us!r}")
        if not (math.isfinite(self.gain_db) and self.gain_db >= 0):
            raise ValueError(f"gain_db must be zero or more, got {self.gain_db!r}")
        if len(self.white_balance) != 3 or not all(
            math.isfinite(g) and g > 0 for g in self.white_balance
        ):
            raise ValueError(
                f"white_balance must be three positive gains (r, g, b), got {self.white_balance!r}"
            )
        object.__setattr__(self, "white_balance", tuple(float(g) for g in self.white_balance))
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive or None (whole sensor), got {value!r}")
        for name in ("offset_x", "offset_y"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be zero or more, got {getattr(self, name)!r}")

    def replace(self, **changes: Any) -> CameraSettings:
        """A copy with some fields changed (settings are immutable so they can be shared)."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for capture records and configuration files."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Frame:
    """One picture and what the station must record about it.

    ``frame_number`` counts frames this camera object delivered (1, 2, …) and never goes
    back, even across re-attachment; ``camera_frame_id`` is what the camera numbered it.
    ``host_timestamp_ns`` is ``time.monotonic_ns()`` when the frame reached the host;
    ``camera_timestamp`` is the camera's own tick counter, where it has one.
    """

    rgb: np.ndarray
    serial: str
    frame_number: int
    host_timestamp_ns: int
    exposure_us: float
    gain_db: float
    pixel_format: str
    camera_timestamp: int | None = None
    camera_frame_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rgb.dtype != np.uint8 or self.rgb.ndim != 3 or self.rgb.shape[2] != 3:
            raise ValueError(
                f"Frame.rgb must be HxWx3 uint8, got {self.rgb.shape} {self.rgb.dtype}"
            )

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    def metadata(self) -> dict[str, Any]:
        """Everything but the pixels, as plain data (for the capture record)."""
        return {
            "serial": self.serial,
            "frame_number": self.frame_number,
            "host_timestamp_ns": self.host_timestamp_ns,
            "camera_timestamp": self.camera_timestamp,
            "camera_frame_id": self.camera_frame_id,
            "exposure_us": self.exposure_us,
            "gain_db": self.gain_db,
            "pixel_format": self.pixel_format,
            "width": self.width,
            "height": self.height,
            **self.extra,
        }


class Camera(abc.ABC):
    """A camera that the station opens, configures and grabs single frames from.

    Two ways to take a picture: `grab` triggers in software and waits; or
    `arm_hardware_trigger` then `wait_hardware_frame` for a frame started by an
    electrical edge (foot pedal, light-barrier, strobe controller).
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._is_open = False
        self._hardware_trigger_armed = False
        self._frames_delivered = 0

    # -- life cycle --------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._is_open

    def open(self) -> None:
        """Connect to the camera; opening an open camera does nothing."""
        with self._lock:
            if self._is_open:
                return
            self._do_open()
            self._is_open = True

    def close(self) -> None:
        """Release the camera (others may open it afterwards); safe to call twice."""
        with self._lock:
            if not self._is_open:
                return
            try:
                self._do_close()
            finally:
                self._is_open = False
                self._hardware_trigger_armed = False

    def __enter__(self) -> Camera:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- identity ----------------------------------------------------------------------

    @property
    def info(self) -> CameraInfo:
        """Serial, model and device class of the camera (open it first)."""
        self._require_open()
        return self._do_info()

    @property
    def serial(self) -> str:
        return self.info.serial

    # -- settings ----------------------------------------------------------------------

    def apply(self, settings: CameraSettings) -> CameraSettings:
        """Set exposure, gain, white balance, pixel format and region; return what took."""
        with self._lock:
            self._require_open()
            self._do_apply(settings)
            self._hardware_trigger_armed = False
            return self._do_read_settings()

    def settings(self) -> CameraSettings:
        """The settings the camera is running with now (read back, not remembered)."""
        with self._lock:
            self._require_open()
            return self._do_read_settings()

    def save_settings(self, path: str | Path) -> Path:
        """Write the camera's settings to a pylon feature file (``.pfs``)."""
        path = Path(path)
        if not path.parent.is_dir():
            raise CameraError(f"cannot save camera settings: folder {path.parent} does not exist")
        with self._lock:
            self._require_open()
            self._do_save_settings(path)
        return path

    def load_settings(self, path: str | Path) -> CameraSettings:
        """Restore settings from a ``.pfs`` file written by `save_settings`; return them."""
        path = Path(path)
        if not path.is_file():
            raise CameraError(f"cannot load camera settings: {path} is not a file")
        with self._lock:
            self._require_open()
            self._do_load_settings(path)
            self._hardware_trigger_armed = False
            return self._do_read_settings()

    # -- taking pictures ---------------------------------------------------------------

    def grab(self, timeout_ms: int = 1000) -> Frame:
        """Trigger in software and return the frame; `GrabTimeout` if none comes in time.

        A camera armed for a hardware trigger is switched back to software triggering.
        """
        self._check_timeout(timeout_ms)
        with self._lock:
            self._require_open()
            self._hardware_trigger_armed = False
            return self._count(self._do_grab(timeout_ms))

    def arm_hardware_trigger(self, line: str = "Line1", activation: str = "RisingEdge") -> None:
        """Start the next frame on an edge at an input line; then `wait_hardware_frame`."""
        if activation not in HARDWARE_TRIGGER_ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {HARDWARE_TRIGGER_ACTIVATIONS}, got {activation!r}"
            )
        with self._lock:
            self._require_open()
            self._do_arm_hardware_trigger(line, activation)
            self._hardware_trigger_armed = True

    @property
    def hardware_trigger_armed(self) -> bool:
        return self._hardware_trigger_armed

    def wait_hardware_frame(self, timeout_ms: int = 1000) -> Frame:
        """Wait for a frame started by the hardware trigger; the camera stays armed."""
        self._check_timeout(timeout_ms)
        with self._lock:
            self._require_open()
            if not self._hardware_trigger_armed:
                raise CameraError(
                    f"camera {self._name()}: not armed for a hardware trigger; "
                    "call arm_hardware_trigger() first"
                )
            return self._count(self._do_wait_hardware_frame(timeout_ms))

    def disarm_hardware_trigger(self) -> None:
        """Stop waiting for hardware edges (the next `grab` would do this too)."""
        with self._lock:
            self._require_open()
            if self._hardware_trigger_armed:
                self._do_disarm_hardware_trigger()
                self._hardware_trigger_armed = False

    # -- shared helpers ----------------------------------------------------------------

    def _require_open(self) -> None:
        if not self._is_open:
            raise CameraError(f"camera {self._name()} is not open; call open() first")

    def _name(self) -> str:
        """How messages name this camera before `info` can be read."""
        return type(self).__name__

    @staticmethod
    def _check_timeout(timeout_ms: int) -> None:
        if not isinstance(timeout_ms, int) or timeout_ms <= 0:
            raise ValueError(f"timeout_ms must be a positive whole number, got {timeout_ms!r}")

    def _next_frame_number(self) -> int:
        """The number the next delivered frame will carry (hooks build frames with it)."""
        return self._frames_delivered + 1

    def _count(self, frame: Frame) -> Frame:
        self._frames_delivered = frame.frame_number
        return frame

    # -- hooks for concrete cameras ----------------------------------------------------

    @abc.abstractmethod
    def _do_open(self) -> None: ...

    @abc.abstractmethod
    def _do_close(self) -> None: ...

    @abc.abstractmethod
    def _do_info(self) -> CameraInfo: ...

    @abc.abstractmethod
    def _do_apply(self, settings: CameraSettings) -> None: ...

    @abc.abstractmethod
    def _do_read_settings(self) -> CameraSettings: ...

    @abc.abstractmethod
    def _do_save_settings(self, path: Path) -> None: ...

    @abc.abstractmethod
    def _do_load_settings(self, path: Path) -> None: ...

    @abc.abstractmethod
    def _do_grab(self, timeout_ms: int) -> Frame: ...

    @abc.abstractmethod
    def _do_arm_hardware_trigger(self, line: str, activation: str) -> None: ...

    @abc.abstractmethod
    def _do_wait_hardware_frame(self, timeout_ms: int) -> Frame: ...

    @abc.abstractmethod
    def _do_disarm_hardware_trigger(self) -> None: ...
