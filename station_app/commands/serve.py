"""``station-app serve``: the station core, as the systemd service runs it."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from station_app.commands import add_common_options

log = logging.getLogger("station_app.service.core")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="run the station core: devices, models, workflow, socket for the UI",
        description="Open the station (camera, lights, scanner, models, capture store, "
                    "inspection workflow) and serve the workflow on service.socket_path for "
                    "the operator UI and automation until SIGTERM or Ctrl-C. Under systemd "
                    "(Type=notify) it reports READY=1 once camera, lights and models are up, "
                    "feeds the watchdog while the station is healthy, and logs to the "
                    "journal with the station and capture on every line. The unit "
                    "systemd/inspection-station.service runs this command.")
    parser.add_argument("--image-source", type=Path,
                        help="frames for an emulated or replay camera (default: "
                             "camera.image_source, else synthetic frames written under "
                             "data.root/emulator-frames for the emulated camera)")
    add_common_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import faulthandler
    import signal

    from station_app.config import load_config
    from station_app.service.core import StationCore
    from station_app.service.journal_logging import setup_logging
    from station_app.service.notify import SystemdNotifier

    # Read (and hide from child processes) NOTIFY_SOCKET first, so that even a bad
    # configuration is reported to systemd.
    notifier = SystemdNotifier.from_environment(unset=True)
    # systemd's watchdog kills with SIGABRT: print every thread's stack to the journal first.
    faulthandler.enable()
    try:
        config = load_config(args.config)
    except Exception as error:
        notifier.status(f"configuration refused: {str(error).splitlines()[0]}")
        raise
    setup_logging(config.station.id, logging.DEBUG if args.verbose else logging.INFO)

    frames = args.image_source or config.camera.image_source
    if frames is None and config.camera.driver == "emulated":
        from station_app.commands.emulator_frames import ensure_emulator_frames
        notifier.status("starting: writing frames for the emulated camera")
        frames = ensure_emulator_frames(config.data.root / "emulator-frames")

    core = StationCore(config, notifier=notifier, frames=frames)

    def on_signal(number: int, _frame: object) -> None:
        core.request_stop_from_signal(signal.Signals(number).name)

    previous = {number: signal.signal(number, on_signal)
                for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        core.run()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        notifier.close()
    log.info("station core stopped cleanly")
    return 0
