"""``station-app demo``: the whole station on emulated camera, simulated lights and scanner."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Mapping

from station_app.commands import SCREEN_VARIABLES, add_common_options, screens_set

log = logging.getLogger("station_app.demo")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="the whole station on emulated camera, simulated lights and scanner",
        description="Run the station with no hardware: pypylon's emulated camera serving "
                    "synthetic frames, lighting controller and barcode scanner simulators on "
                    "pseudo-terminals, the bundled models, the capture store and the "
                    "inspection workflow. A scripted associate signs in, scans an item code, "
                    "triggers a capture, agrees with the verdict; one line per inspection, "
                    "then trigger-to-verdict latency p50/p95 and an HTML report of the "
                    "demo's captures. The tray geometry and thresholds come from the current "
                    "calibration profile (`station-app calibrate`); without one the tray is "
                    "detected on the first frame. With a screen (DISPLAY, "
                    "WAYLAND_DISPLAY or QT_QPA_PLATFORM set) and without --headless it "
                    "opens the operator window instead, where a person runs inspections "
                    "('Scan next demo item' stands in for the scanner).")
    parser.add_argument("--headless", action="store_true",
                        help="no window: scripted inspections (also chosen when there is no "
                             "screen)")
    parser.add_argument("--count", type=int, default=3, metavar="N",
                        help="inspections to run headless (default 3)")
    parser.add_argument("--out", type=Path, metavar="RUN",
                        help="write the capture store (RUN/captures) and report "
                             "(RUN/report.html) here instead of under data.root")
    parser.add_argument("--image-source", type=Path,
                        help="frames for the emulated camera (default: camera.image_source, "
                             "else synthetic frames written under data.root/emulator-frames)")
    parser.add_argument("--no-report", action="store_true", help="skip the HTML report")
    add_common_options(parser)
    parser.set_defaults(handler=run)


def choose_mode(headless: bool, environ: Mapping[str, str]) -> tuple[str, str]:
    """("window" or "headless", why): the window needs a screen, or a Qt platform that
    stands in for one (QT_QPA_PLATFORM, e.g. offscreen or xcb)."""
    if headless:
        return "headless", "--headless given"
    screens = screens_set(environ)
    if not screens:
        return "headless", f"no screen: none of {', '.join(SCREEN_VARIABLES)} is set"
    return "window", f"{screens[0]}={environ[screens[0]]}"


def run(args: argparse.Namespace) -> int:
    from station_app.config import load_config
    from station_app.demo import run_demo
    from station_app.errors import StationError

    if args.count < 1:
        raise StationError(f"--count must be at least 1, got {args.count}")
    mode, reason = choose_mode(args.headless, os.environ)
    config = load_config(args.config)
    source = args.image_source or config.camera.image_source
    if source is None and config.camera.driver == "emulated":
        from station_app.commands.emulator_frames import ensure_emulator_frames
        source = ensure_emulator_frames(config.data.root / "emulator-frames")
    if mode == "window":
        log.info("opening the operator window (%s)", reason)
        from ui.app import run_operator_window
        return run_operator_window(config, source, args.out, demo=True)
    log.info("running headless (%s)", reason)
    run_demo(config, args.count, source, args.out, report=not args.no_report)
    return 0
