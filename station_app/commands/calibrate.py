"""``station-app calibrate``: the technician's calibration wizard (needs a screen and the PIN)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from station_app.commands import add_common_options, screens_set



def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate", help="the technician's calibration wizard (screen and technician PIN)",
        description="Calibrate the station, one step per screen, each measured against its "
                    "pass criterion and redone until it passes (or accepted or skipped with "
                    "a reason): 1 camera focus, 2 exposure and white balance on the grey "
                    "card, 3 lighting uniformity on the empty tray, 4 tray corners, 5 "
                    "decision thresholds from a validation replay run, 6 summary and save "
                    "as a new profile version (calibration.profile_dir). Opens only with "
                    "the technician PIN (`station-app profile set-pin`). Needs a screen "
                    "(DISPLAY, WAYLAND_DISPLAY or QT_QPA_PLATFORM) and the camera: stop the "
                    "station service first. Exit 0 when a new profile was saved, 1 when "
                    "closed without saving.")
    parser.add_argument("--image-source", type=Path, metavar="DIR",
                        help="frames for an emulated or replay camera (default: "
                             "camera.image_source, else the emulator's synthetic frames); "
                             "sub-folders named focus, exposure, uniformity and tray give "
                             "each step its own scene")
    parser.add_argument("--run", type=Path, metavar="RUN_DIR",
                        help="validation run for the threshold step (the --out folder of "
                             "`station-app replay` over validation data); it can also be "
                             "chosen in the wizard")
    add_common_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from calibration.pin import PinError, PinStore
    from station_app.config import load_config
    from station_app.errors import StationError

    if not screens_set(os.environ):
        raise StationError("the calibration wizard needs a screen, and none of DISPLAY, "
                           "WAYLAND_DISPLAY or QT_QPA_PLATFORM is set: run it at the "
                           "station's screen, or over SSH with DISPLAY=:0 to show it there")
    config = load_config(args.config)
    calibration = config.calibration
    pins = PinStore(calibration.pin_file, calibration.pin_max_failures,
                    calibration.pin_lockout_minutes)
    try:
        if not pins.is_set():
            raise StationError("no technician PIN is set: set one with `station-app profile "
                               "set-pin`, then run calibrate again")
    except PinError as error:
        raise StationError(str(error)) from error
    if args.run is not None and not (args.run / "run.json").is_file():
        raise StationError(f"--run {args.run}: not a replay run (no run.json); give the "
                           f"--out folder of a finished `station-app replay`")
    source = args.image_source or config.camera.image_source
    if source is None and config.camera.driver == "emulated":
        from station_app.commands.emulator_frames import ensure_emulator_frames
        source = ensure_emulator_frames(config.data.root / "emulator-frames")
    from ui.calibration.wizard_window import run_calibration

    return run_calibration(config, source, args.run)
