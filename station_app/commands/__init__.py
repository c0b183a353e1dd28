"""One module per ``station-app`` sub-command.

Each module defines ``register(subparsers)``, which adds its parser and sets
``handler`` to a function taking the parsed arguments and returning an exit code.
Modules import their heavy dependencies inside the handler so that ``--help`` is fast.
"""

import argparse
from collections.abc import Mapping

# What tells a Qt front end there is somewhere to draw: a screen, or a Qt platform that
# stands in for one (QT_QPA_PLATFORM, e.g. offscreen or xcb). Without any, Qt aborts.
SCREEN_VARIABLES = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")


def screens_set(environ: Mapping[str, str]) -> list[str]:
    """The screen variables set (non-empty) in ``environ``, in SCREEN_VARIABLES order."""
    return [name for name in SCREEN_VARIABLES if environ.get(name)]


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Options every sub-command takes."""
    parser.add_argument("--config", metavar="FILE",
                        help="station configuration YAML (default: $STATION_CONFIG, "
                             "else the packaged default)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
