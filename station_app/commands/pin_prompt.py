"""The technician PIN prompt shared by the commands that only a technician may run
(``profile rollback``, ``store remove-reference``): one prompt, one refusal message."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from station_app.errors import StationError

if TYPE_CHECKING:
    from calibration.pin import PinStore


class PinReader:
    """PINs from the terminal (hidden) or, with --pin-stdin, from standard input lines."""

    def __init__(self, from_stdin: bool) -> None:
        self.from_stdin = from_stdin

    def __call__(self, prompt: str) -> str:
        if self.from_stdin:
            line = sys.stdin.readline()
            if not line:
                raise StationError(f"--pin-stdin: standard input ended before the "
                                   f"{prompt.rstrip(': ').lower()}")
            return line.strip()
        import getpass

        try:
            return getpass.getpass(prompt)
        except EOFError:
            raise StationError("no PIN given (no terminal? use --pin-stdin)") from None


def require_technician_pin(pins: PinStore, from_stdin: bool, action: str) -> None:
    """Ask for and verify the technician PIN before ``action`` (named in the refusal,
    e.g. "rollback"); refused while no PIN is set. A wrong or locked PIN raises the
    ``calibration.pin`` error, which the command turns into its one-line message."""
    if not pins.is_set():
        raise StationError("no technician PIN is set: set one with `station-app profile "
                           f"set-pin`, then run {action} again")
    pins.verify(PinReader(from_stdin)("Technician PIN: "))
