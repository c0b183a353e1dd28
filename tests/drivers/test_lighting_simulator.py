"""The controller simulator's state machine: command/reply tables and per-channel state."""

from __future__ import annotations

import pytest

from drivers.lighting.simulator import FIRMWARE_VERSION, GardasoftSimulator
from drivers.lighting.state import ChannelMode, ChannelState


def reply(*lines: str) -> str:
    return "".join(line + "\r\n" for line in lines) + ">"


# One session from power-on: (command, exact reply on the line).
SESSION = [
    ("ST1", reply("ST1", "CH1 OFF S0 W0 D0")),
    ("RS1,80", reply("RS1,80")),
    ("ST1", reply("ST1", "CH1 CONT S80 W0 D0")),
    ("RS1,150", reply("RS1,150", "Err 5")),
    ("ST1", reply("ST1", "CH1 CONT S100 W0 D0")),
    ("GR", reply("GR", "5")),
    ("GR", reply("GR", "0")),
    ("RT2,500,20,150", reply("RT2,500,20,150")),
    ("ST2", reply("ST2", "CH2 PULSE S150 W500 D20")),
    ("RT2,200000,200000,250", reply("RT2,200000,200000,250", "Err 5")),
    ("ST2", reply("ST2", "CH2 PULSE S200 W100000 D100000")),
    ("rs3,12.5", reply("rs3,12.5")),
    ("ST3", reply("ST3", "CH3 CONT S12.5 W0 D0")),
    ("RS3,0", reply("RS3,0")),
    ("ST3", reply("ST3", "CH3 OFF S0 W0 D0")),
    ("VR", reply("VR", FIRMWARE_VERSION)),
    ("AW", reply("AW")),
]


def test_session_replies_byte_for_byte():
    simulator = GardasoftSimulator(channel_count=4)
    for command, expected in SESSION:
        assert simulator.respond(command).decode() == expected, command


# Every error, from a fresh controller: (command, Err code).
ERRORS = [
    ("RS5,10", 1), ("RS0,10", 1), ("RS1,-1", 1), ("RT1,0,0,50", 1), ("RT1,10,-1,50", 1),
    ("ST9", 1),
    ("XX", 2), ("R", 2), ("", 2), ("R1,5", 2), ("1RS,5", 2),
    ("RS1,abc", 3), ("RS1,", 3), ("RSx,10", 3), ("RS1,nan", 3), ("RT1,10.5,0,50", 3),
    ("ST1.0", 3),
    ("RS1", 4), ("RS1,2,3", 4), ("RT1,100,0", 4), ("ST", 4), ("VR1", 4), ("GR1", 4), ("AW,1", 4),
    ("RS1,100.01", 5), ("RT1,100001,0,50", 5), ("RT1,100,100001,50", 5), ("RT1,100,0,200.5", 5),
]


@pytest.mark.parametrize("command, code", ERRORS, ids=[f"{c or 'empty'}" for c, _ in ERRORS])
def test_each_error_is_answered_and_kept_for_gr(command, code):
    simulator = GardasoftSimulator(channel_count=4)
    assert simulator.respond(command).decode() == reply(command, f"Err {code}")
    assert simulator.last_error == code
    assert simulator.respond("GR").decode() == reply("GR", str(code))
    assert simulator.last_error == 0


def test_a_refused_command_changes_nothing_but_a_clamped_one_applies_the_limit():
    simulator = GardasoftSimulator()
    simulator.respond("RS1,40")
    simulator.respond("RS1,abc")
    simulator.respond("RS5,90")
    assert simulator.channel(1) == ChannelState(1, ChannelMode.CONTINUOUS, 40.0)
    simulator.respond("RS1,101")
    assert simulator.channel(1) == ChannelState(1, ChannelMode.CONTINUOUS, 100.0)


def test_feed_handles_split_and_batched_commands_and_crlf():
    simulator = GardasoftSimulator()
    assert simulator.feed(b"RS1,") == b""
    assert simulator.feed(b"60\rST") == reply("RS1,60").encode()
    assert simulator.feed(b"1\r\nVR\r") == (reply("ST1", "CH1 CONT S60 W0 D0")
                                          + reply("VR", FIRMWARE_VERSION)).encode()
    assert simulator.commands_received == ["RS1,60", "ST1", "VR"]


def test_save_survives_power_cycle_and_unsaved_changes_do_not():
    simulator = GardasoftSimulator()
    simulator.respond("RS1,70")
    simulator.respond("RT2,300,10,120")
    assert simulator.unsaved_changes
    simulator.respond("AW")
    assert not simulator.unsaved_changes
    simulator.respond("RS1,10")
    simulator.respond("RS4,99")
    simulator.power_cycle()
    assert simulator.channel(1) == ChannelState(1, ChannelMode.CONTINUOUS, 70.0)
    assert simulator.channel(2) == ChannelState(2, ChannelMode.PULSE, 120.0, 300, 10)
    assert simulator.channel(4) == ChannelState(4, ChannelMode.OFF, 0.0)
    assert not simulator.unsaved_changes


def test_power_cycle_without_save_comes_up_dark():
    simulator = GardasoftSimulator(channel_count=2)
    simulator.respond("RS1,70")
    simulator.respond("RS2,x")
    simulator.power_cycle()
    assert simulator.channel(1).mode is ChannelMode.OFF
    assert simulator.last_error == 0


def test_channel_count_bounds_the_channels():
    simulator = GardasoftSimulator(channel_count=2)
    assert simulator.respond("RS2,10").decode() == reply("RS2,10")
    assert simulator.respond("RS3,10").decode() == reply("RS3,10", "Err 1")


def test_standalone_simulator_prints_its_port_and_serves_the_driver(tmp_path):
    import select
    import subprocess
    import sys

    from drivers.lighting.gardasoft import GardasoftController

    link = tmp_path / "ttyLIGHT"
    process = subprocess.Popen(
        [sys.executable, "-m", "drivers.lighting.simulator", "--link", str(link)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready, _, _ = select.select([process.stdout], [], [], 15)
        assert ready, "simulator printed no port"
        port = process.stdout.readline().strip()
        assert port == str(link)
        with GardasoftController(port, timeout_s=1.0) as lights:
            lights.set_brightness(3, 64)
            assert lights.status(3) == ChannelState(3, ChannelMode.CONTINUOUS, 64.0)
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
    assert not link.is_symlink()
