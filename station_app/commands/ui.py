"""``station-app ui``: the operator window (kiosk) connected to the station core's socket."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from station_app.commands import add_common_options

log = logging.getLogger("station_app.ui")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ui", help="the operator window, connected to the station core (station-app serve)",
        description="Show the operator window for an associate, full screen when "
                    "ui.fullscreen is set, connected to the station core over its local "
                    "socket: the core owns camera, lights, models and the capture store; "
                    "this window only sends commands and shows events, so it can be "
                    "restarted without touching the station. Needs a screen (DISPLAY or "
                    "WAYLAND_DISPLAY).")
    parser.add_argument("--socket", type=Path, metavar="PATH",
                        help="the core's socket (default: service.socket_path of the "
                             "configuration)")
    add_common_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from station_app.commands.demo import choose_mode
    from station_app.config import load_config
    from station_app.errors import StationError

    # Qt aborts the whole process (SIGABRT, core dump) when it finds no display, so ask
    # before anything creates the QApplication.
    mode, reason = choose_mode(False, os.environ)
    if mode != "window":
        raise StationError(f"{reason}: the operator window needs a screen; set DISPLAY "
                           "(or WAYLAND_DISPLAY), or run it in the kiosk session")
    config = load_config(args.config)
    socket_path = args.socket or config.service.socket_path
    from station_app.service.client import WorkflowClient
    from ui.app import run_remote_window

    log.info("connecting to the station core at %s", socket_path)
    client = WorkflowClient(socket_path)
    try:
        return run_remote_window(config, client)
    finally:
        client.close()
