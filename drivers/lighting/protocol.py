r"""Framing and vocabulary of the Gardasoft RT-series style LED controller protocol.

The line is RS-232, 115200 baud, 8N1. This module is the one place that knows the bytes.

Exchange (every command, no exceptions)::

    host sends        <COMMAND>\r
    controller sends  <COMMAND>\r\n          echo of the command, exactly as received
                      <LINE>\r\n             zero or more response lines
                      >                      the prompt; nothing follows it

An error replaces the response lines with one line ``Err n``. Commands, in this
station's dialect (c = channel from 1, s = brightness %, p/d = integer microseconds)::

    RSc,s       continuous light;  s = 0 switches the channel off     -> no lines
    RTc,p,d,s   strobe: pulse width p, delay d after the trigger, s % -> no lines
    STc         channel status   -> "CH<c> <OFF|CONT|PULSE> S<s> W<p> D<d>"
    VR          firmware version -> one line of text (never contains ">")
    GR          last error code since the previous GR, 0 if none; reading clears it
    AW          save all settings to non-volatile memory (restored at power-on)

Errors: ``Err 1`` invalid parameter (e.g. no such channel), ``Err 2`` unknown command,
``Err 3`` bad number, ``Err 4`` wrong parameter count, ``Err 5`` value clamped: the
value exceeded the channel's limit and the controller applied its limit instead.

The echo is checked: a reply whose first line is not the command, or that holds
non-ASCII bytes, is noise or a stale answer and raises :class:`ProtocolError`; the
line is then drained until quiet so the next command starts clean. There is no
automatic retry here: whether repeating a command is safe is the device's decision.
"""

from __future__ import annotations

import math
import re
import threading

from drivers.errors import DeviceTimeout, ProtocolError
from drivers.lighting.errors import ERRORS_BY_CODE, LightingError
from drivers.lighting.state import ChannelMode, ChannelState
from drivers.serial_link import SerialLink

TERMINATOR = b"\r"
LINE_END = "\r\n"
PROMPT = b">"

_ERROR_LINE = re.compile(r"Err (\d+)")
_STATUS_LINE = re.compile(
    r"CH(?P<channel>\d+) (?P<mode>OFF|CONT|PULSE) S(?P<percent>\d+(?:\.\d+)?)"
    r" W(?P<width>\d+) D(?P<delay>\d+)")


def format_percent(percent: float) -> str:
    """Brightness as the controller reads it: ``80``, ``12.5``, ``33.33`` (two decimals at most)."""
    if not math.isfinite(percent) or percent < 0:
        raise ValueError(f"brightness must be a finite percentage >= 0, got {percent!r}")
    return f"{round(percent, 2):.2f}".rstrip("0").rstrip(".")


def encode(command: str) -> bytes:
    """``"RS1,80"`` -> ``b"RS1,80\\r"``; refuses text that would break the framing."""
    if not command or not command.isascii() or any(c in command for c in "\r\n>"):
        raise ValueError(f"not a sendable controller command: {command!r}")
    return command.encode("ascii") + TERMINATOR


def parse_reply(command: str, raw: bytes) -> list[str]:
    """Check one reply to ``command`` (prompt included) and return its response lines.

    Raises :class:`ProtocolError` on framing faults and the named :class:`LightingError`
    subclass on ``Err n``.
    """
    if not raw.endswith(PROMPT):
        raise ProtocolError(f"reply to {command!r} without the '>' prompt: {raw!r}")
    try:
        text = raw[:-len(PROMPT)].decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError(f"non-ASCII bytes in reply to {command!r}: {raw!r}") from None
    lines = text.split(LINE_END)
    if len(lines) < 2 or lines[-1] != "":
        raise ProtocolError(f"reply to {command!r} is not CR LF framed: {raw!r}")
    if lines[0] != command:
        raise ProtocolError(f"reply does not echo {command!r}: {raw!r}")
    body = lines[1:-1]
    for line in body:
        match = _ERROR_LINE.fullmatch(line)
        if match:
            code = int(match.group(1))
            error = ERRORS_BY_CODE.get(code)
            if error is None:
                raise ProtocolError(f"controller answered {command!r} with unknown {line!r}")
            raise error(f"controller answered {command!r} with {line} ({error.description})",
                        command=command)
    return body


def parse_status(channel: int, lines: list[str]) -> ChannelState:
    """``["CH1 PULSE S150 W500 D20"]`` -> :class:`ChannelState`."""
    match = _STATUS_LINE.fullmatch(lines[0]) if len(lines) == 1 else None
    if match is None or int(match["channel"]) != channel:
        raise ProtocolError(f"unexpected status for channel {channel}: {lines!r}")
    return ChannelState(channel, ChannelMode(match["mode"]), float(match["percent"]),
                        int(match["width"]), int(match["delay"]))


class GardasoftProtocol:
    """Sends commands over a :class:`SerialLink` and turns replies into values or errors.

    One command at a time (a lock), each with its own deadline ``timeout_s``.
    """

    def __init__(self, link: SerialLink, *, timeout_s: float = 0.5) -> None:
        self.link = link
        self.timeout_s = timeout_s
        self._lock = threading.Lock()

    def transact(self, command: str) -> list[str]:
        """Send one command; return its response lines (echo and prompt removed)."""
        request = encode(command)
        with self._lock:
            self.link.discard_input()  # stale bytes must not pass for this reply
            self.link.write(request)
            try:
                raw = self.link.read_until(PROMPT, self.timeout_s)
            except DeviceTimeout:
                partial = self.link.discard_input()
                if partial:
                    raise ProtocolError(f"reply to {command!r} from {self.link.port} without "
                                        f"the '>' prompt within {self.timeout_s:g} s: "
                                        f"{partial!r}") from None
                raise DeviceTimeout(f"lighting controller on {self.link.port} did not answer "
                                    f"{command!r} within {self.timeout_s:g} s") from None
            try:
                return parse_reply(command, raw)
            except LightingError:
                raise
            except ProtocolError:
                self.link.drain_until_quiet(quiet_s=0.05, timeout_s=self.timeout_s)
                raise

    # -- the command vocabulary ------------------------------------------------------

    def set_continuous(self, channel: int, percent: float) -> None:
        self.transact(f"RS{channel},{format_percent(percent)}")

    def set_pulse(self, channel: int, width_us: int, delay_us: int, percent: float) -> None:
        self.transact(f"RT{channel},{int(width_us)},{int(delay_us)},{format_percent(percent)}")

    def status(self, channel: int) -> ChannelState:
        return parse_status(channel, self.transact(f"ST{channel}"))

    def version(self) -> str:
        lines = self.transact("VR")
        if len(lines) != 1 or not lines[0]:
            raise ProtocolError(f"unexpected version reply: {lines!r}")
        return lines[0]

    def last_error(self) -> int:
        """Read and clear the controller's last error code (0: none since the last read)."""
        lines = self.transact("GR")
        if len(lines) != 1 or not lines[0].isdigit():
            raise ProtocolError(f"unexpected last-error reply: {lines!r}")
        return int(lines[0])

    def save(self) -> None:
        self.transact("AW")
