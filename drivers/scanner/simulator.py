"""A simulated serial barcode scanner on a pty: :meth:`ScannerSimulator.scan` sends one line.

Standalone, for the demo station or a manual session: the first stdout line is the port;
then each line typed on stdin is scanned, or ``--codes`` are scanned in turn every
``--interval`` seconds::

    python -m drivers.scanner.simulator [--link /tmp/ttySCAN] [--line-ending crlf]
    python -m drivers.scanner.simulator --codes 4006381333931 ITEM-0042 --interval 5
"""

from __future__ import annotations

import argparse
import itertools
import signal
import sys
import threading
from types import TracebackType

from drivers.simulator_pty import PtySimulator

LINE_ENDINGS = {"cr": b"\r", "lf": b"\n", "crlf": b"\r\n"}


class ScannerSimulator:
    """A scanner that sends each code as one line ending in ``line_ending``."""

    def __init__(self, *, line_ending: bytes = b"\r\n", link_path: str | None = None) -> None:
        self.line_ending = line_ending
        self.pty = PtySimulator(None, link_path=link_path, name="scanner")

    @property
    def port(self) -> str:
        return self.pty.port

    def start(self) -> ScannerSimulator:
        self.pty.start()
        return self

    def stop(self) -> None:
        self.pty.stop()

    def __enter__(self) -> ScannerSimulator:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def scan(self, code: str | bytes) -> None:
        """Send one scan; bytes go out as given (for misreads and noise)."""
        data = code.encode("ascii") if isinstance(code, str) else code
        self.pty.inject(data + self.line_ending)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drivers.scanner.simulator",
                                     description="Serve a simulated barcode scanner on a pty.")
    parser.add_argument("--link", help="also publish the port as this symlink (stable name)")
    parser.add_argument("--line-ending", choices=sorted(LINE_ENDINGS), default="crlf")
    parser.add_argument("--codes", nargs="+", help="scan these in turn instead of reading stdin")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between --codes")
    args = parser.parse_args(argv)
    # Ctrl-C and SIGTERM both end the session cleanly (a background job ignores SIGINT).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with ScannerSimulator(line_ending=LINE_ENDINGS[args.line_ending],
                          link_path=args.link) as simulator:
        try:   # a client may stop us as soon as it has read the port
            print(simulator.port, flush=True)
            print(f"scanner simulator on {simulator.port}; Ctrl-C stops", file=sys.stderr,
                  flush=True)
            if args.codes:
                stop = threading.Event()
                for code in itertools.cycle(args.codes):
                    if stop.wait(args.interval):
                        break
                    simulator.scan(code)
            else:
                for line in sys.stdin:
                    simulator.scan(line.rstrip("\r\n"))
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
