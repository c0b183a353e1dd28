"""Gardasoft protocol framing as (sent, reply) pairs, over a real pty and as pure parsing."""

from __future__ import annotations


import pytest

from drivers.errors import DeviceTimeout, ProtocolError
from drivers.lighting.errors import (BadNumber, InvalidParameter, UnknownCommand, ValueClamped,
                                     WrongParameterCount)
from drivers.lighting.protocol import GardasoftProtocol, encode, format_percent, parse_reply
from drivers.lighting.state import ChannelMode, ChannelState
from drivers.serial_link import SerialLink
from drivers.simulator_pty import PtySimulator


# A blocked read fails the test instead of hanging the run; not a speed check.
pytestmark = pytest.mark.timeout(30)


class ScriptedDevice:
    """Plays back (expected sent, reply) pairs and records every command it actually got."""

    def __init__(self) -> None:
        self.script: list[tuple[bytes, bytes]] = []
        self.received: list[bytes] = []
        self._pending = b""

    def feed(self, data: bytes) -> bytes:
        self._pending += data
        replies = b""
        while b"\r" in self._pending:
            line, _, self._pending = self._pending.partition(b"\r")
            self.received.append(line + b"\r")
            if self.script:
                expected, reply = self.script.pop(0)
                replies += reply if expected == line + b"\r" else b""
        return replies


@pytest.fixture
def scripted():
    device = ScriptedDevice()
    with PtySimulator(device, name="scripted") as simulator, \
            SerialLink(simulator.port) as link:
        yield device, GardasoftProtocol(link, timeout_s=0.3)


def expect(device: ScriptedDevice, *pairs: tuple[bytes, bytes]) -> None:
    device.script = list(pairs)
    device.received.clear()


STATUS_PULSE = ChannelState(1, ChannelMode.PULSE, 150.0, 500, 20)

# (call, sent, reply, expected return value)
COMMANDS = [
    (lambda p: p.set_continuous(1, 80), b"RS1,80\r", b"RS1,80\r\n>", None),
    (lambda p: p.set_continuous(2, 12.5), b"RS2,12.5\r", b"RS2,12.5\r\n>", None),
    (lambda p: p.set_continuous(4, 33.333), b"RS4,33.33\r", b"RS4,33.33\r\n>", None),
    (lambda p: p.set_continuous(3, 0), b"RS3,0\r", b"RS3,0\r\n>", None),
    (lambda p: p.set_pulse(1, 500, 20, 150), b"RT1,500,20,150\r", b"RT1,500,20,150\r\n>", None),
    (lambda p: p.status(1), b"ST1\r", b"ST1\r\nCH1 PULSE S150 W500 D20\r\n>", STATUS_PULSE),
    (lambda p: p.status(2), b"ST2\r", b"ST2\r\nCH2 CONT S12.5 W0 D0\r\n>",
     ChannelState(2, ChannelMode.CONTINUOUS, 12.5)),
    (lambda p: p.status(3), b"ST3\r", b"ST3\r\nCH3 OFF S0 W0 D0\r\n>",
     ChannelState(3, ChannelMode.OFF, 0.0)),
    (lambda p: p.version(), b"VR\r", b"VR\r\nRT420 v2.1.0\r\n>", "RT420 v2.1.0"),
    (lambda p: p.last_error(), b"GR\r", b"GR\r\n3\r\n>", 3),
    (lambda p: p.last_error(), b"GR\r", b"GR\r\n0\r\n>", 0),
    (lambda p: p.save(), b"AW\r", b"AW\r\n>", None),
]


@pytest.mark.parametrize("call, sent, reply, expected", COMMANDS,
                         ids=[c[1].decode().strip() for c in COMMANDS])
def test_command_sends_exact_bytes_and_parses_reply(scripted, call, sent, reply, expected):
    device, protocol = scripted
    expect(device, (sent, reply))
    assert call(protocol) == expected
    assert device.received == [sent]


# (command sent raw, reply, exception): every Err n maps to its own exception.
ERRORS = [
    ("RS9,50", b"RS9,50\r\nErr 1\r\n>", InvalidParameter),
    ("XY1", b"XY1\r\nErr 2\r\n>", UnknownCommand),
    ("RS1,abc", b"RS1,abc\r\nErr 3\r\n>", BadNumber),
    ("RS1", b"RS1\r\nErr 4\r\n>", WrongParameterCount),
    ("RS1,150", b"RS1,150\r\nErr 5\r\n>", ValueClamped),
]


@pytest.mark.parametrize("command, reply, error", ERRORS, ids=[e[2].__name__ for e in ERRORS])
def test_err_replies_raise_named_exceptions(scripted, command, reply, error):
    device, protocol = scripted
    expect(device, (command.encode() + b"\r", reply))
    with pytest.raises(error) as raised:
        protocol.transact(command)
    assert raised.value.code == int(reply.split(b"Err ")[1][:1])
    assert raised.value.command == command
    assert f"Err {error.code}" in str(raised.value)


def test_silent_controller_times_out(scripted):
    device, protocol = scripted
    expect(device)  # nothing scripted: the device stays silent
    with pytest.raises(DeviceTimeout, match="ST1"):
        protocol.status(1)


def test_reply_without_prompt_is_a_protocol_error_and_the_next_command_works(scripted):
    device, protocol = scripted
    expect(device, (b"ST1\r", b"ST1\r\nCH1 PULSE S150 W500 D20\r\n"),
           (b"ST1\r", b"ST1\r\nCH1 PULSE S150 W500 D20\r\n>"))
    with pytest.raises(ProtocolError, match="prompt"):
        protocol.status(1)
    assert protocol.status(1) == STATUS_PULSE


def test_garbage_before_reply_is_a_protocol_error_and_the_next_command_works(scripted):
    device, protocol = scripted
    expect(device, (b"VR\r", b"\xff\x00>#VR\r\nRT420\r\n>"), (b"VR\r", b"VR\r\nRT420\r\n>"))
    with pytest.raises(ProtocolError):
        protocol.version()
    assert protocol.version() == "RT420"


def test_a_late_extra_reply_is_not_taken_for_the_next_answer(scripted):
    device, protocol = scripted
    # The controller answers GR, then (a late answer to something older) a status line.
    expect(device, (b"GR\r", b"GR\r\n0\r\n>ST9\r\nCH9 OFF S0 W0 D0\r\n>"),
           (b"ST1\r", b"ST1\r\nCH1 PULSE S150 W500 D20\r\n>"))
    assert protocol.last_error() == 0
    assert protocol.status(1) == STATUS_PULSE
    assert device.received == [b"GR\r", b"ST1\r"]


# Pure framing: bytes in, lines or an error out.
@pytest.mark.parametrize("command, raw, lines", [
    ("RS1,80", b"RS1,80\r\n>", []),
    ("ST2", b"ST2\r\nCH2 OFF S0 W0 D0\r\n>", ["CH2 OFF S0 W0 D0"]),
    ("VR", b"VR\r\nline one\r\nline two\r\n>", ["line one", "line two"]),
])
def test_parse_reply_returns_response_lines(command, raw, lines):
    assert parse_reply(command, raw) == lines


@pytest.mark.parametrize("raw, why", [
    (b"RS1,80\r\n", "prompt"),
    (b"RS1,81\r\n>", "echo"),
    (b"rs1,80\r\n>", "echo"),
    (b"RS1,80\r\n\xff>", "non-ASCII"),
    (b"RS1,80>", "CR LF"),
    (b"RS1,80\r\nOK>", "CR LF"),
    (b"RS1,80\r\nErr 9\r\n>", "unknown"),
    (b">", "CR LF"),
])
def test_parse_reply_rejects_malformed_replies(raw, why):
    with pytest.raises(ProtocolError, match=why):
        parse_reply("RS1,80", raw)


@pytest.mark.parametrize("status_line", [
    "CH2 CONT S80 W0 D0", "CH1 DIM S80 W0 D0", "CH1 CONT S-1 W0 D0", "CH1 CONT S80 W0",
])
def test_status_for_the_wrong_channel_or_malformed_is_a_protocol_error(scripted, status_line):
    device, protocol = scripted
    expect(device, (b"ST1\r", b"ST1\r\n" + status_line.encode() + b"\r\n>"))
    with pytest.raises(ProtocolError):
        protocol.status(1)


@pytest.mark.parametrize("percent, text", [(80, "80"), (80.0, "80"), (12.5, "12.5"),
                                           (33.333, "33.33"), (0.004, "0"), (199.999, "200")])
def test_format_percent(percent, text):
    assert format_percent(percent) == text


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf")])
def test_format_percent_refuses_impossible_values(bad):
    with pytest.raises(ValueError):
        format_percent(bad)


@pytest.mark.parametrize("command", ["", "RS1\r", "ST1\n", "A>B", "RSé"])
def test_encode_refuses_text_that_would_break_framing(command):
    with pytest.raises(ValueError):
        encode(command)
