"""``station-app devices``: cameras, serial ports, and what answers on each."""

from __future__ import annotations

import argparse

from station_app.commands import add_common_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "devices", help="list cameras and serial ports, and what answers on each",
        description="List cameras (real and emulated) and serial ports. The configured "
                    "lighting port is asked for its firmware version; with --probe-all every "
                    "serial port is (this sends 'VR' to devices you may not own). Simulated "
                    "devices in the configuration are started and asked too.")
    parser.add_argument("--probe-all", action="store_true",
                        help="ask every serial port whether a lighting controller answers")
    parser.add_argument("--timeout", type=float, default=0.3, help="seconds to wait per port")
    add_common_options(parser)
    parser.set_defaults(handler=run)


def probe_lighting(port: str, timeout_s: float, baudrate: int = 115200) -> str:
    """What answers on a port, asked in the lighting controller's protocol."""
    from drivers.errors import DeviceTimeout, DriverError
    from drivers.lighting.gardasoft import GardasoftController

    controller = GardasoftController(port, timeout_s=timeout_s, reconnect_timeout_s=0.0,
                                     baudrate=baudrate)
    try:
        controller.open()
        return f"lighting controller, firmware {controller.firmware_version()}"
    except DeviceTimeout:
        return "no reply to 'VR' (not a lighting controller; a scanner only talks when it scans)"
    except (DriverError, OSError) as error:
        return f"not usable: {error}"
    finally:
        try:
            controller.close()
        except Exception:  # closing a port that never opened
            pass


def run(args: argparse.Namespace) -> int:
    from serial.tools import list_ports

    from drivers.camera import enable_emulation
    from drivers.camera.errors import CameraError
    from station_app.config import load_config

    config = load_config(args.config)
    if config.camera.driver == "emulated":
        try:
            enable_emulation(1)
        except CameraError:
            pass
    print("cameras:")
    try:
        from drivers.camera import list_cameras
        cameras = list_cameras()
    except Exception as error:  # pylon transport layers can fail in many ways
        cameras = []
        print(f"  camera enumeration failed: {error}")
    for camera in cameras:
        kind = "emulated" if camera.device_class == "BaslerCamEmu" else camera.device_class
        print(f"  {camera.serial:<16} {camera.model:<32} {kind}")
    if not cameras:
        print("  none found (check the USB3 cable and that the pylon udev rules are installed)")
    wanted = config.camera.serial or "(first found)"
    print(f"  configured: {config.camera.driver} camera {wanted}")

    print("serial ports:")
    ports = sorted(list_ports.comports(), key=lambda p: p.device)
    configured = {config.lighting.port: "lighting", config.scanner.port: "scanner"}
    for port in ports:
        role = configured.get(port.device, "")
        answer = ""
        if args.probe_all or role == "lighting":
            answer = probe_lighting(port.device, args.timeout, config.lighting.baudrate)
        label = f"[{role}] " if role else ""
        print(f"  {port.device:<20} {label}{port.description or ''} {answer}".rstrip())
    if not ports:
        print("  none found")

    if config.lighting.driver == "simulated" or config.scanner.driver == "simulated":
        print("simulated devices (started for this check):")
    if config.lighting.driver == "simulated":
        from drivers.lighting.simulator import GardasoftSimulator
        with GardasoftSimulator(max(config.lighting.channels)) as simulator:
            print(f"  lighting on {simulator.port}: "
                  f"{probe_lighting(simulator.port, args.timeout)}")
    if config.scanner.driver == "simulated":
        from drivers.scanner.simulator import ScannerSimulator
        with ScannerSimulator() as simulator:
            print(f"  scanner on {simulator.port}: simulated barcode scanner (sends codes "
                  "when told to scan)")
    return 0
