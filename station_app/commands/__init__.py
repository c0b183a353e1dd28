"""One module per ``station-app`` sub-command.

Each module defines ``register(subparsers)``, which adds its parser and sets
``handler`` to a function taking the parsed arguments and returning an exit code.
Modules import their heavy dependencies inside the handler so that ``--help`` is fast.
"""

import argparse


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Options every sub-command takes."""
    parser.add_argument("--config", metavar="FILE",
                        help="station configuration YAML (default: $STATION_CONFIG, "
                             "else the packaged default)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
