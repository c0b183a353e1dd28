"""``station-app``: the one entry point for people and scripts."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from station_app import __version__
from station_app.errors import StationError

# Sub-command modules under station_app.commands, in the order --help lists them.
COMMANDS: tuple[str, ...] = (
    "synth",
    "dataset",
    "devices",
    "capture",
    "train",
    "evaluate",
    "replay",
    "store",
    "compare",
    "bench",
    "demo",
    "profile",
    "calibrate",
    "ui",
    "serve",
    "status",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="station-app",
        description="Damage-inspection station: capture, score, review, replay and calibrate.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"station_app.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr)
    try:
        return int(args.handler(args) or 0)
    except StationError as error:
        print(f"station-app {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"station-app {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
