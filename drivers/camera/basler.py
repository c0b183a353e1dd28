"""Basler cameras over pypylon's `InstantCamera`: real USB3/GigE cameras and the emulator.

One frame per request: the camera sits in trigger mode with grabbing started, and `grab`
sends a software trigger and waits for that one frame. Feature names are looked up in
order of preference, so SFNC2 cameras (``ExposureTime``, ``BalanceRatio``, ``RGB8``) and
older ones (``ExposureTimeAbs``, ``BalanceRatioAbs``, ``RGB8Packed``, the emulator) both work.

Removal: pylon reports a lost camera through a configuration-event callback and
`IsCameraDeviceRemoved`; the driver then destroys the dead device, raises `CameraRemoved`,
and on the next call looks for the same serial number again. When it is back, the driver
attaches it, reopens it and restores the complete feature state it last had (a pylon
feature string taken after every change), so a camera that came back after a power cut
behaves as before.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from pypylon import genicam, pylon

from drivers.camera import convert, pylon_signals
from drivers.camera.base import Camera, CameraInfo, CameraSettings, Frame
from drivers.camera.errors import (
    CameraError,
    CameraNotFound,
    CameraRemoved,
    GrabFailed,
    GrabTimeout,
    SettingRejected,
)

# Feature names in order of preference (SFNC2 first, then older Basler / emulator names).
EXPOSURE_FEATURES = ("ExposureTime", "ExposureTimeAbs")
GAIN_FEATURES = ("Gain", "GainAbs")
BALANCE_RATIO_FEATURES = ("BalanceRatio", "BalanceRatioAbs")
BALANCE_CHANNELS = ("Red", "Green", "Blue")

REATTACH_POLL_S = 0.5


class PylonDevices:
    """Where the driver finds cameras: pylon's transport-layer factory.

    A separate object so one place decides what "present" means; a multi-camera rig or a
    test can narrow it (see `drivers.camera.emulated.UnpluggableDevices`).
    """

    def enumerate(self) -> list[pylon.DeviceInfo]:
        return list(pylon.TlFactory.GetInstance().EnumerateDevices())

    def create(self, device_info: pylon.DeviceInfo) -> pylon.IPylonDevice:
        return pylon.TlFactory.GetInstance().CreateDevice(device_info)


def camera_info(device_info: pylon.DeviceInfo) -> CameraInfo:
    """The station's view of a pylon device description."""
    return CameraInfo(
        serial=device_info.GetSerialNumber(),
        model=device_info.GetModelName(),
        device_class=device_info.GetDeviceClass(),
        user_name=device_info.GetUserDefinedName(),
        vendor=device_info.GetVendorName(),
    )


class _RemovalWatch(pylon.ConfigurationEventHandler):
    """Remembers pylon's "camera device removed" callback (it arrives on a pylon thread)."""

    def __init__(self) -> None:
        super().__init__()
        self.removed = threading.Event()

    def OnCameraDeviceRemoved(self, camera: pylon.InstantCamera) -> None:  # noqa: N802 (pylon)
        self.removed.set()


class BaslerCamera(Camera):
    """A Basler camera opened by serial number, or the first one found when `serial` is None."""

    def __init__(self, serial: str | None = None, *, devices: PylonDevices | None = None) -> None:
        super().__init__()
        self._wanted_serial = serial
        self._devices = devices or PylonDevices()
        self._instant = pylon.InstantCamera()
        self._removal = _RemovalWatch()
        self._instant.RegisterConfiguration(
            self._removal, pylon.RegistrationMode_Append, pylon.Cleanup_None
        )
        self._info: CameraInfo | None = None
        self._removed = False
        self._trigger_mode: str | None = None  # None (not grabbing), "software", "hardware"
        self._feature_state = ""  # pylon feature string, restored after re-attachment
        self._software_white_balance = convert.NEUTRAL_WHITE_BALANCE
        self._frame_format = ""
        self._frame_exposure_us = 0.0
        self._frame_gain_db = 0.0

    # -- opening and identity ----------------------------------------------------------

    def _do_open(self) -> None:
        self._attach(self._find_device())
        try:
            with self._guard("configure the camera"):
                self._configure_device()
            self._remember_state()
        except BaseException:
            self._instant.DestroyDevice()  # a half-opened camera would stay locked
            raise

    def _configure_device(self) -> None:
        """Set-up every open (and re-attach) needs; subclasses add theirs (the emulator's)."""
        for auto in ("ExposureAuto", "GainAuto", "BalanceWhiteAuto"):
            self._set_if_available(auto, "Off")
        self._set_if_available("AcquisitionMode", "Continuous")

    def _do_close(self) -> None:
        self._stop_grabbing()
        if self._instant.IsPylonDeviceAttached():
            self._instant.DestroyDevice()  # also closes; lets other processes open it
        self._removed = False

    def _do_info(self) -> CameraInfo:
        assert self._info is not None
        return self._info

    def _name(self) -> str:
        serial = self._info.serial if self._info else self._wanted_serial or "(first found)"
        return f"Basler {serial}"

    def _find_device(self) -> pylon.DeviceInfo:
        found = self._devices.enumerate()
        for device_info in found:
            if self._wanted_serial is None or device_info.GetSerialNumber() == self._wanted_serial:
                return device_info
        raise CameraNotFound(self._wanted_serial, [d.GetSerialNumber() for d in found])

    def _attach(self, device_info: pylon.DeviceInfo) -> None:
        try:
            self._instant.Attach(self._devices.create(device_info))
            self._instant.Open()
        except genicam.GenericException as error:
            if self._instant.IsPylonDeviceAttached():
                self._instant.DestroyDevice()
            raise CameraError(
                f"camera {device_info.GetSerialNumber()} is present but cannot be opened "
                f"(in use by another program?): {_first_line(error)}"
            ) from error
        self._info = camera_info(device_info)
        self._wanted_serial = self._info.serial  # re-attach finds this one, not "the first"
        self._removal.removed.clear()
        self._removed = False
        self._trigger_mode = None

    # -- settings ----------------------------------------------------------------------

    def _do_apply(self, settings: CameraSettings) -> None:
        self._ensure_attached()
        self._stop_grabbing()  # region and pixel format are locked while grabbing
        try:
            with self._guard("apply settings"):
                self._set_pixel_format(settings.pixel_format)
                self._set_region(settings)
                self._set_float(EXPOSURE_FEATURES, settings.exposure_us, "exposure (µs)")
                self._set_float(GAIN_FEATURES, settings.gain_db, "gain (dB)")
                self._set_white_balance(settings.white_balance)
        finally:
            if not self._device_gone():  # a rejected value leaves the rest applied: record it
                self._remember_state()

    def _do_read_settings(self) -> CameraSettings:
        self._ensure_attached()
        with self._guard("read settings"):
            return CameraSettings(
                exposure_us=self._get_float(EXPOSURE_FEATURES),
                gain_db=self._get_float(GAIN_FEATURES),
                white_balance=self._read_white_balance(),
                pixel_format=self._node("PixelFormat").GetValue(),
                width=self._node("Width").GetValue(),
                height=self._node("Height").GetValue(),
                offset_x=self._node("OffsetX").GetValue(),
                offset_y=self._node("OffsetY").GetValue(),
            )

    def _set_pixel_format(self, pixel_format: str) -> None:
        if pixel_format not in convert.SUPPORTED_PIXEL_FORMATS:
            raise SettingRejected(str(convert.UnsupportedPixelFormat(pixel_format)))
        node = self._node("PixelFormat")
        offered = node.GetSymbolics()
        if pixel_format not in offered:
            usable = [f for f in convert.SUPPORTED_PIXEL_FORMATS if f in offered]
            raise SettingRejected(
                f"camera {self._name()} has no pixel format {pixel_format!r}; "
                f"it offers {', '.join(usable) or 'none the station can convert'}"
            )
        node.SetValue(pixel_format)

    def _set_region(self, settings: CameraSettings) -> None:
        # Offsets go to 0 first so that any width/height up to the maximum is allowed.
        self._node("OffsetX").SetValue(0)
        self._node("OffsetY").SetValue(0)
        width_node, height_node = self._node("Width"), self._node("Height")
        width = settings.width if settings.width is not None else width_node.GetMax()
        height = settings.height if settings.height is not None else height_node.GetMax()
        for node, value, name in (
            (width_node, width, "Width"), (height_node, height, "Height"),
        ):
            self._set_int(node, value, name)
        self._set_int(self._node("OffsetX"), settings.offset_x, "OffsetX")
        self._set_int(self._node("OffsetY"), settings.offset_y, "OffsetY")

    def _set_int(self, node: Any, value: int, name: str) -> None:
        low, high, step = node.GetMin(), node.GetMax(), node.GetInc()
        if not (low <= value <= high) or (value - low) % step:
            raise SettingRejected(
                f"camera {self._name()}: {name} {value} is not allowed "
                f"(range {low}..{high}, step {step})"
            )
        node.SetValue(int(value))

    def _set_float(self, names: tuple[str, ...], value: float, what: str) -> None:
        node = self._first_available(names, what)
        low, high = node.GetMin(), node.GetMax()
        if not (low <= value <= high):
            raise SettingRejected(
                f"camera {self._name()}: {what} {value:g} is out of range {low:g}..{high:g}"
            )
        node.SetValue(float(value))

    def _get_float(self, names: tuple[str, ...]) -> float:
        return float(self._first_available(names, names[0]).GetValue())

    def _hardware_balance_node(self) -> Any | None:
        if not genicam.IsAvailable(self._node("BalanceRatioSelector")):
            return None
        for name in BALANCE_RATIO_FEATURES:
            if genicam.IsWritable(self._node(name)):
                return self._node(name)
        return None

    def _set_white_balance(self, gains: tuple[float, float, float]) -> None:
        """Balance ratios on the camera where it has them, else remembered for software."""
        ratio = self._hardware_balance_node()
        if ratio is None:
            self._software_white_balance = tuple(gains)
            return
        self._software_white_balance = convert.NEUTRAL_WHITE_BALANCE
        selector = self._node("BalanceRatioSelector")
        for channel, gain in zip(BALANCE_CHANNELS, gains):
            selector.SetValue(channel)
            if not (ratio.GetMin() <= gain <= ratio.GetMax()):
                raise SettingRejected(
                    f"camera {self._name()}: white balance {channel} {gain:g} is out of "
                    f"range {ratio.GetMin():g}..{ratio.GetMax():g}"
                )
            ratio.SetValue(float(gain))

    def _read_white_balance(self) -> tuple[float, float, float]:
        ratio = self._hardware_balance_node()
        if ratio is None:
            return self._software_white_balance
        selector = self._node("BalanceRatioSelector")
        gains = []
        for channel in BALANCE_CHANNELS:
            selector.SetValue(channel)
            gains.append(float(ratio.GetValue()))
        return (gains[0], gains[1], gains[2])

    @property
    def white_balance_in_software(self) -> bool:
        """True where the camera has no balance ratios and the driver multiplies instead."""
        self._require_open()
        return self._hardware_balance_node() is None

    # -- feature files -----------------------------------------------------------------

    def _do_save_settings(self, path: Path) -> None:
        self._ensure_attached()
        self._stop_grabbing()  # pylon leaves out features that are locked while grabbing
        partial = path.with_name(path.name + ".partial")
        with self._guard(f"save settings to {path}"):
            pylon.FeaturePersistence.Save(str(partial), self._instant.GetNodeMap())
        os.replace(partial, path)  # a crash leaves the old file, never half a new one

    def _do_load_settings(self, path: Path) -> None:
        self._ensure_attached()
        self._stop_grabbing()
        try:
            pylon.FeaturePersistence.Load(str(path), self._instant.GetNodeMap(), True)
        except genicam.GenericException as error:
            self._raise_if_removed(error)
            raise SettingRejected(
                f"camera {self._name()}: settings file {path} was rejected: {_first_line(error)}"
            ) from error
        self._remember_state()

    def _remember_state(self) -> None:
        """Snapshot every feature, so re-attachment can restore the camera exactly.

        Taken only while not grabbing: pylon leaves locked features (region, pixel
        format) out of the snapshot otherwise.
        """
        self._stop_grabbing()
        with self._guard("read the feature state"):
            self._feature_state = pylon.FeaturePersistence.SaveToString(self._instant.GetNodeMap())
            self._frame_format = self._node("PixelFormat").GetValue()
            self._frame_exposure_us = self._get_float(EXPOSURE_FEATURES)
            self._frame_gain_db = self._get_float(GAIN_FEATURES)

    # -- grabbing ----------------------------------------------------------------------

    def _do_grab(self, timeout_ms: int) -> Frame:
        self._ensure_attached()
        deadline = time.monotonic() + timeout_ms / 1000
        self._start_grabbing("software")
        pylon_signals.ensure_pylon_handler()
        with self._guard("trigger"):
            ready = self._instant.WaitForFrameTriggerReady(
                timeout_ms, pylon.TimeoutHandling_Return
            )
            if not ready:
                self._timed_out(timeout_ms, "camera not ready for a trigger")
            self._instant.ExecuteSoftwareTrigger()
        return self._retrieve(_remaining_ms(deadline), timeout_ms)

    def _do_arm_hardware_trigger(self, line: str, activation: str) -> None:
        self._ensure_attached()
        source = self._node("TriggerSource")
        if line not in source.GetSymbolics():
            raise SettingRejected(
                f"camera {self._name()} cannot trigger from {line!r}; "
                f"sources: {', '.join(source.GetSymbolics())}"
            )
        self._stop_grabbing()
        with self._guard("arm the hardware trigger"):
            self._set_trigger(source=line, activation=activation)
        self._remember_state()
        self._start_grabbing("hardware")

    def _do_wait_hardware_frame(self, timeout_ms: int) -> Frame:
        self._ensure_attached()
        if self._trigger_mode != "hardware":  # lost after re-attachment: arm again
            self._start_grabbing("hardware")
        pylon_signals.ensure_pylon_handler()
        return self._retrieve(timeout_ms, timeout_ms, stop_on_timeout=False)

    def _do_disarm_hardware_trigger(self) -> None:
        self._stop_grabbing()

    def _start_grabbing(self, mode: str) -> None:
        if self._trigger_mode == mode and self._instant.IsGrabbing():
            return
        self._stop_grabbing()
        with self._guard("start grabbing"):
            if mode == "software":
                self._set_trigger(source="Software", activation=None)
            self._instant.StartGrabbing(pylon.GrabStrategy_OneByOne)
        self._trigger_mode = mode

    def _set_trigger(self, source: str, activation: str | None) -> None:
        self._node("TriggerSelector").SetValue("FrameStart")
        self._node("TriggerMode").SetValue("On")
        self._node("TriggerSource").SetValue(source)
        if activation is not None:
            self._node("TriggerActivation").SetValue(activation)

    def _stop_grabbing(self) -> None:
        """Stop the stream; also drops any late frame so it is never taken for the next one."""
        self._trigger_mode = None
        if self._instant.IsPylonDeviceAttached() and self._instant.IsGrabbing():
            try:
                self._instant.StopGrabbing()
            except genicam.GenericException:
                pass  # a removed camera cannot stop; removal is detected on the next call

    def _retrieve(self, wait_ms: int, timeout_ms: int, stop_on_timeout: bool = True) -> Frame:
        with self._guard("retrieve a frame"):
            result = self._instant.RetrieveResult(max(wait_ms, 1), pylon.TimeoutHandling_Return)
        arrived_ns = time.monotonic_ns()
        pylon_signals.note_pylon_handler()
        if not result.IsValid():
            self._raise_if_removed()
            if stop_on_timeout:
                self._stop_grabbing()
            self._timed_out(timeout_ms, "no frame arrived")
        try:
            if not result.GrabSucceeded():
                raise GrabFailed(
                    self.info.serial,
                    int(result.GetErrorCode()),
                    result.GetErrorDescription(),
                )
            raw = result.GetArray()
            camera_tick = int(result.GetTimeStamp())
            camera_frame_id = int(result.GetImageNumber())
        finally:
            result.Release()
        rgb = convert.to_rgb(raw, self._frame_format)
        if convert.is_color(self._frame_format):
            rgb = convert.apply_white_balance(rgb, self._software_white_balance, in_place=True)
        return Frame(
            rgb=rgb,
            serial=self.info.serial,
            frame_number=self._next_frame_number(),
            host_timestamp_ns=arrived_ns,
            exposure_us=self._frame_exposure_us,
            gain_db=self._frame_gain_db,
            pixel_format=self._frame_format,
            camera_timestamp=camera_tick or None,  # 0: the camera has no tick counter
            camera_frame_id=camera_frame_id,
        )

    def _timed_out(self, timeout_ms: int, why: str) -> None:
        raise GrabTimeout(f"camera {self._name()}: {why} within {timeout_ms} ms")

    # -- removal and re-attachment -----------------------------------------------------

    @property
    def removed(self) -> bool:
        """True from detecting a removal until the camera is attached again."""
        return self._removed or self._device_gone()

    def reattach(self, timeout_s: float = 0.0) -> bool:
        """Look for this camera's serial number until `timeout_s`; reopen it if found.

        Returns True when the camera is attached (again). `grab` calls this itself with no
        wait, so a station loop needs nothing more than retrying its grab.
        """
        with self._lock:
            self._require_open()
            if not self.removed:
                return True
            self._forget_device()
            deadline = time.monotonic() + timeout_s
            while True:
                if self._try_reattach():
                    return True
                if time.monotonic() >= deadline:
                    return False
                time.sleep(min(REATTACH_POLL_S, max(deadline - time.monotonic(), 0)))

    def _device_gone(self) -> bool:
        return (
            self._removal.removed.is_set()
            or not self._instant.IsPylonDeviceAttached()
            or self._instant.IsCameraDeviceRemoved()
        )

    def _ensure_attached(self) -> None:
        """Before any camera access: notice a removal, and re-attach if it is back."""
        if self._removed or self._device_gone():
            self._forget_device()
            if not self._try_reattach():
                raise CameraRemoved(
                    f"camera {self._name()} is not connected (removed); "
                    "waiting for it to come back"
                )

    def _forget_device(self) -> None:
        """Destroy the dead device object; pylon cannot use it again after a removal."""
        self._removed = True
        self._trigger_mode = None
        if self._instant.IsPylonDeviceAttached():
            try:
                self._instant.DestroyDevice()
            except genicam.GenericException:
                pass

    def _try_reattach(self) -> bool:
        serial = self._wanted_serial
        match = [d for d in self._devices.enumerate() if d.GetSerialNumber() == serial]
        if not match:
            return False
        self._attach(match[0])
        self._configure_device()
        if self._feature_state:
            with self._guard("restore settings after re-attachment"):
                pylon.FeaturePersistence.LoadFromString(
                    self._feature_state, self._instant.GetNodeMap(), True
                )
        self._remember_state()
        return True

    def _raise_if_removed(self, cause: BaseException | None = None) -> None:
        if self._device_gone():
            self._forget_device()
            raise CameraRemoved(f"camera {self._name()} was removed") from cause

    # -- node access -------------------------------------------------------------------

    def _node(self, name: str) -> Any:
        return self._instant.GetNodeMap().GetNode(name)

    def _first_available(self, names: tuple[str, ...], what: str) -> Any:
        for name in names:
            node = self._node(name)
            if genicam.IsAvailable(node):
                return node
        raise SettingRejected(f"camera {self._name()} has no {what} feature ({', '.join(names)})")

    def _set_if_available(self, name: str, value: str) -> None:
        node = self._node(name)
        if genicam.IsWritable(node):
            node.SetValue(value)

    def _guard(self, doing: str) -> _PylonErrors:
        return _PylonErrors(self, doing)


class _PylonErrors:
    """Turns pylon exceptions into camera errors, telling a removal from other faults."""

    def __init__(self, camera: BaslerCamera, doing: str) -> None:
        self._camera = camera
        self._doing = doing

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type | None, error: BaseException | None, tb: Any) -> bool:
        if error is None or not isinstance(error, genicam.GenericException):
            return False
        self._camera._raise_if_removed(error)
        if isinstance(error, genicam.TimeoutException):
            raise GrabTimeout(
                f"camera {self._camera._name()}: timed out trying to {self._doing}"
            ) from error
        raise CameraError(
            f"camera {self._camera._name()}: could not {self._doing}: {_first_line(error)}"
        ) from error


def _remaining_ms(deadline: float) -> int:
    return max(int((deadline - time.monotonic()) * 1000), 1)


def _first_line(error: BaseException) -> str:
    """pylon messages end with the C++ file and line; keep the part a person can act on."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text.split(" : ")[0] if " : " in text else text
