"""The station's devices, built from configuration; simulators where it says so.

Simulated lighting and scanner run in this process on real pseudo-terminals and the
real drivers talk to them, so a station with no hardware exercises the same code paths
as one with hardware.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.camera import Camera, CameraError, CameraSettings, ReplayCamera, enable_emulation
from drivers.errors import DriverError
from drivers.lighting.controller import LightingController
from drivers.lighting.gardasoft import GardasoftController
from drivers.lighting.simulator import GardasoftSimulator
from station_app import config as station_config
from station_app.errors import StationError

log = logging.getLogger("station_app.hardware")


def camera_settings(settings: station_config.CameraSettings) -> CameraSettings:
    return CameraSettings(exposure_us=settings.exposure_us, gain_db=settings.gain_db,
                          white_balance=tuple(settings.white_balance),
                          pixel_format=settings.pixel_format, width=settings.width,
                          height=settings.height, offset_x=settings.offset_x,
                          offset_y=settings.offset_y)


def open_camera(settings: station_config.CameraSettings,
                image_source: Path | None = None) -> Camera:
    """Open and configure the camera the configuration names."""
    source = image_source or settings.image_source
    serial = settings.serial or None
    try:
        if settings.driver == "replay":
            if source is None:
                raise StationError("camera.driver is 'replay' but camera.image_source is empty: "
                                   "set it to a folder of frames or a data set")
            camera: Camera = ReplayCamera(source)
        elif settings.driver == "emulated":
            if source is None:
                raise StationError("camera.driver is 'emulated' but camera.image_source is empty:"
                                   " set it to a folder of 4096x3000 frames (station-app synth "
                                   "writes some under frames/)")
            enable_emulation(1)
            from drivers.camera import EmulatedBaslerCamera
            camera = EmulatedBaslerCamera(source, serial)
        else:
            from drivers.camera import BaslerCamera
            camera = BaslerCamera(serial)
        camera.open()
        if settings.settings_file:
            camera.load_settings(settings.settings_file)
        camera.apply(camera_settings(settings))
        return camera
    except (CameraError, ValueError) as error:
        raise StationError(f"camera: {error}") from error


@dataclass
class LightingConnection:
    """The controller and, when simulated, the simulator serving it."""

    controller: LightingController
    simulator: Any = None

    def close(self) -> None:
        with contextlib.suppress(DriverError, OSError):
            self.controller.close()
        if self.simulator is not None:
            self.simulator.stop()


def open_lighting(settings: station_config.LightingSettings) -> LightingConnection:
    """Connect to the lighting controller (starting the simulator when configured) and set
    the configured brightness or strobe timing on every channel, lights off."""
    simulator = None
    port = settings.port
    if settings.driver == "simulated":
        simulator = GardasoftSimulator(channel_count=max(settings.channels)).start()
        port = simulator.port
    try:
        controller = GardasoftController(port, channel_count=max(max(settings.channels), 1),
                                         timeout_s=settings.timeout_s,
                                         baudrate=settings.baudrate).open()
        for channel in settings.channels:
            if settings.mode == "strobe":
                controller.set_pulse(channel, settings.pulse_width_us, settings.pulse_delay_us,
                                     settings.brightness_percent)
            else:
                controller.set_brightness(channel, settings.brightness_percent)
        controller.off()
    except (DriverError, OSError) as error:
        if simulator is not None:
            simulator.stop()
        raise StationError(f"lighting controller on {port}: {error}") from error
    return LightingConnection(controller, simulator)


@dataclass
class ScannerConnection:
    scanner: Any
    simulator: Any = None

    def close(self) -> None:
        with contextlib.suppress(DriverError, OSError):
            self.scanner.stop()
        if self.simulator is not None:
            self.simulator.stop()


def open_scanner(settings: station_config.ScannerSettings) -> ScannerConnection | None:
    """The barcode scanner, or None when codes are typed on the keyboard."""
    if settings.driver == "keyboard":
        return None
    from drivers.scanner.codes import CheckDigitMode, CodeRules
    from drivers.scanner.serial_scanner import SerialScanner
    from drivers.scanner.simulator import ScannerSimulator

    simulator = None
    port = settings.port
    if settings.driver == "simulated":
        simulator = ScannerSimulator().start()
        port = simulator.port
    rules = CodeRules(min_length=settings.min_length, max_length=settings.max_length,
                      check_digit=CheckDigitMode(settings.check_digit))
    try:
        scanner = SerialScanner(port, rules=rules, baudrate=settings.baudrate)
    except (DriverError, OSError) as error:
        if simulator is not None:
            simulator.stop()
        raise StationError(f"barcode scanner on {port}: {error}") from error
    return ScannerConnection(scanner, simulator)


@dataclass
class StationDevices:
    """Everything the station drives; ``close`` releases all of it."""

    camera: Camera
    lighting: LightingConnection
    scanner: ScannerConnection | None = None

    def close(self) -> None:
        for closer in (self.camera.close, self.lighting.close,
                       self.scanner.close if self.scanner else None):
            if closer is not None:
                with contextlib.suppress(Exception):
                    closer()
