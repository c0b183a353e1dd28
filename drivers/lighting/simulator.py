"""A simulated Gardasoft RT-series style controller, served on a pseudo-terminal.

It keeps state per channel and answers byte for byte as ``drivers.lighting.protocol``
documents (echo, response lines, ``>``), written independently of the driver's parser
so the two check each other. Limits: continuous brightness up to 100 %, pulse
brightness up to 200 % (overdrive), pulse width 1…100 000 us, delay up to 100 000 us;
anything above a limit is clamped and answered ``Err 5``. ``AW`` saves the settings,
:meth:`GardasoftSimulator.power_cycle` restores the saved ones (all off if never saved).

Run it standalone for the demo station or a manual session::

    python -m drivers.lighting.simulator [--link /tmp/ttyLIGHT] [--channels 4]
    python -m drivers.lighting.simulator --bench 200
"""

from __future__ import annotations

import argparse
import math
import re
import signal
import sys
import threading
from dataclasses import dataclass, replace
from types import TracebackType

from drivers.lighting.state import ChannelMode, ChannelState
from drivers.simulator_pty import PtySimulator

FIRMWARE_VERSION = "RT420-SIM 1.0.0"
MAX_CONTINUOUS_PERCENT = 100.0
MAX_PULSE_PERCENT = 200.0
MAX_WIDTH_US = 100_000
MAX_DELAY_US = 100_000

_COMMAND = re.compile(r"([A-Z]{2})(.*)")
_DECIMAL = re.compile(r"-?\d+(\.\d+)?")
_INTEGER = re.compile(r"-?\d+")


class _CommandError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class _Channel:
    mode: ChannelMode = ChannelMode.OFF
    percent: float = 0.0
    width_us: int = 0
    delay_us: int = 0


class GardasoftSimulator:
    """Protocol state machine; :meth:`feed` takes line bytes, returns the controller's answer."""

    def __init__(self, channel_count: int = 4, *, link_path: str | None = None) -> None:
        self.channel_count = channel_count
        self._channels = {c: _Channel() for c in range(1, channel_count + 1)}
        self._saved = {c: _Channel() for c in range(1, channel_count + 1)}
        self.last_error = 0
        self.unsaved_changes = False
        self.commands_received: list[str] = []
        self._pending = bytearray()
        self._lock = threading.Lock()
        self.pty = PtySimulator(self, link_path=link_path, name="lighting")

    # -- serving ---------------------------------------------------------------------

    @property
    def port(self) -> str:
        return self.pty.port

    def start(self) -> GardasoftSimulator:
        self.pty.start()
        return self

    def stop(self) -> None:
        self.pty.stop()

    def __enter__(self) -> GardasoftSimulator:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    # -- faults specific to this protocol ----------------------------------------------

    def drop_next_prompt(self) -> None:
        """The next reply arrives without its ``>``."""
        self.pty.corrupt_next_reply(lambda reply: reply.removesuffix(b">"))

    def garble_next_reply(self, noise: bytes = b"\x00\xfe#\x13\xff") -> None:
        """Line noise lands in front of the next reply."""
        self.pty.corrupt_next_reply(lambda reply: noise + reply)

    # -- state, for tests and the demo --------------------------------------------------

    def channel(self, channel: int) -> ChannelState:
        with self._lock:
            c = self._channels[channel]
            return ChannelState(channel, c.mode, c.percent, c.width_us, c.delay_us)

    def power_cycle(self) -> None:
        """Lose the running settings and come up with the saved ones, like a real power cycle."""
        with self._lock:
            self._channels = {c: replace(s) for c, s in self._saved.items()}
            self.last_error = 0
            self.unsaved_changes = False
            self._pending.clear()

    # -- protocol --------------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        """Take bytes from the line; answer every complete (CR-terminated) command in them."""
        replies = []
        with self._lock:
            self._pending += data
            while b"\r" in self._pending:
                line, _, rest = bytes(self._pending).partition(b"\r")
                self._pending[:] = rest
                replies.append(self._respond(line))
        return b"".join(replies)

    def respond(self, command: str) -> bytes:
        """The full reply to one command (without its CR), as it goes on the line."""
        with self._lock:
            return self._respond(command.encode("ascii"))

    def _respond(self, raw: bytes) -> bytes:
        raw = raw.replace(b"\n", b"")  # a terminal's CR LF: the LF is not part of the command
        echo = raw.decode("ascii", errors="replace")
        self.commands_received.append(echo)
        try:
            lines = self._execute(echo.strip().upper())
        except _CommandError as error:
            self.last_error = error.code
            lines = [f"Err {error.code}"]
        return "".join(line + "\r\n" for line in [echo, *lines]).encode("ascii", "replace") + b">"

    def _execute(self, command: str) -> list[str]:
        match = _COMMAND.fullmatch(command)
        if match is None:
            raise _CommandError(2)
        name, rest = match.groups()
        args = rest.split(",") if rest else []
        handler = {"RS": self._rs, "RT": self._rt, "ST": self._st, "VR": self._vr,
                   "GR": self._gr, "AW": self._aw}.get(name)
        if handler is None:
            raise _CommandError(2)
        expected = {"RS": 2, "RT": 4, "ST": 1}.get(name, 0)
        if len(args) != expected:
            raise _CommandError(4)
        return handler(args)

    def _channel_arg(self, text: str) -> int:
        channel = _integer(text)
        if channel not in self._channels:
            raise _CommandError(1)
        return channel

    def _rs(self, args: list[str]) -> list[str]:
        channel = self._channel_arg(args[0])
        percent = _decimal(args[1])
        if percent < 0:
            raise _CommandError(1)
        clamped = percent > MAX_CONTINUOUS_PERCENT
        percent = min(percent, MAX_CONTINUOUS_PERCENT)
        mode = ChannelMode.CONTINUOUS if percent > 0 else ChannelMode.OFF
        self._channels[channel] = _Channel(mode, percent)
        self.unsaved_changes = True
        if clamped:
            raise _CommandError(5)
        return []

    def _rt(self, args: list[str]) -> list[str]:
        channel = self._channel_arg(args[0])
        width, delay, percent = _integer(args[1]), _integer(args[2]), _decimal(args[3])
        if width < 1 or delay < 0 or percent < 0:
            raise _CommandError(1)
        clamped = width > MAX_WIDTH_US or delay > MAX_DELAY_US or percent > MAX_PULSE_PERCENT
        self._channels[channel] = _Channel(ChannelMode.PULSE, min(percent, MAX_PULSE_PERCENT),
                                           min(width, MAX_WIDTH_US), min(delay, MAX_DELAY_US))
        self.unsaved_changes = True
        if clamped:
            raise _CommandError(5)
        return []

    def _st(self, args: list[str]) -> list[str]:
        channel = self._channel_arg(args[0])
        c = self._channels[channel]
        return [f"CH{channel} {c.mode.value} S{_format_percent(c.percent)} "
                f"W{c.width_us} D{c.delay_us}"]

    def _vr(self, args: list[str]) -> list[str]:
        return [FIRMWARE_VERSION]

    def _gr(self, args: list[str]) -> list[str]:
        code, self.last_error = self.last_error, 0
        return [str(code)]

    def _aw(self, args: list[str]) -> list[str]:
        self._saved = {c: replace(s) for c, s in self._channels.items()}
        self.unsaved_changes = False
        return []


def _integer(text: str) -> int:
    if not _INTEGER.fullmatch(text.strip()):
        raise _CommandError(3)
    return int(text)


def _decimal(text: str) -> float:
    if not _DECIMAL.fullmatch(text.strip()):
        raise _CommandError(3)
    value = round(float(text), 2)
    if not math.isfinite(value):
        raise _CommandError(3)
    return value


def _format_percent(percent: float) -> str:
    return f"{percent:.2f}".rstrip("0").rstrip(".")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m drivers.lighting.simulator",
        description="Serve a simulated LED lighting controller on a pseudo-terminal.")
    parser.add_argument("--link", help="also publish the port as this symlink (stable name)")
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--bench", type=int, metavar="N",
                        help="measure N status round trips over the pty and exit")
    args = parser.parse_args(argv)
    if args.bench:
        from drivers.lighting.bench import run_bench
        print(run_bench(args.bench).report())
        return 0
    # Ctrl-C and SIGTERM both end the session cleanly (a background job ignores SIGINT).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with GardasoftSimulator(args.channels, link_path=args.link) as simulator:
        # A client may stop us as soon as it has read the port: the stop must land inside
        # the try, not in the print that follows.
        try:
            print(simulator.port, flush=True)
            print(f"lighting simulator ({args.channels} channels) serving on "
                  f"{simulator.port}; Ctrl-C stops", file=sys.stderr, flush=True)
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
