"""The serial lighting driver against the simulator on a real pty: settings, errors, faults."""

from __future__ import annotations

import threading

import pytest

from drivers.errors import DeviceDisconnected, DeviceTimeout, DriverError, ProtocolError
from drivers.lighting import (BadNumber, ChannelMode, ChannelState, GardasoftController,
                              InvalidParameter, UnknownCommand, ValueClamped,
                              WrongParameterCount)
from drivers.lighting.simulator import FIRMWARE_VERSION, GardasoftSimulator


# A blocked read fails the test instead of hanging the run; not a speed check.
pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def simulator(tmp_path):
    # Published under a stable name, as udev does, so unplug/replug keeps the path.
    with GardasoftSimulator(channel_count=4, link_path=str(tmp_path / "ttyLIGHT")) as sim:
        yield sim


@pytest.fixture
def lights(simulator):
    with GardasoftController(simulator.port, timeout_s=0.3, reconnect_timeout_s=2.0) as lights:
        yield lights


def test_open_checks_the_controller_answers(simulator, lights):
    assert lights.firmware_version() == FIRMWARE_VERSION
    assert simulator.commands_received[:1] == ["VR"]


@pytest.mark.parametrize("percent, mode", [(80, ChannelMode.CONTINUOUS),
                                           (12.5, ChannelMode.CONTINUOUS),
                                           (100, ChannelMode.CONTINUOUS),
                                           (0, ChannelMode.OFF)])
def test_brightness_is_set_and_read_back(simulator, lights, percent, mode):
    lights.set_brightness(2, percent)
    expected = ChannelState(2, mode, float(percent))
    assert lights.status(2) == expected
    assert simulator.channel(2) == expected
    assert lights.settings[2] == expected


def test_pulse_is_set_and_read_back(simulator, lights):
    lights.set_pulse(3, width_us=800, delay_us=25, percent=180)
    expected = ChannelState(3, ChannelMode.PULSE, 180.0, 800, 25)
    assert lights.status(3) == expected
    assert simulator.channel(3) == expected


def test_pulse_timed_to_the_exposure_covers_it(simulator, lights):
    lights.set_pulse_for_exposure(1, exposure_us=10_000, percent=150, trigger_delay_us=100,
                                  guard_us=50)
    state = simulator.channel(1)
    assert state.mode is ChannelMode.PULSE
    assert state.delay_us <= 100 - 50
    assert state.delay_us + state.width_us >= 100 + 10_000 + 50


def test_off_darkens_every_channel_and_on_restores_the_configuration(simulator, lights):
    lights.set_brightness(1, 60)
    lights.set_pulse(2, 400, 0, 120)
    lights.off()
    assert [simulator.channel(c).mode for c in range(1, 5)] == [ChannelMode.OFF] * 4
    lights.set_brightness(1, 45)  # configured while dark: not lit yet
    assert simulator.channel(1).mode is ChannelMode.OFF
    lights.on()
    assert simulator.channel(1) == ChannelState(1, ChannelMode.CONTINUOUS, 45.0)
    assert simulator.channel(2) == ChannelState(2, ChannelMode.PULSE, 120.0, 400, 0)
    assert simulator.channel(3).mode is ChannelMode.OFF


def test_save_stores_settings_in_the_controller(simulator, lights):
    lights.set_brightness(1, 55)
    assert simulator.unsaved_changes
    lights.save()
    assert not simulator.unsaved_changes
    simulator.power_cycle()
    assert lights.status(1) == ChannelState(1, ChannelMode.CONTINUOUS, 55.0)


def test_invalid_channel_is_refused_and_reported_by_last_error(simulator, lights):
    with pytest.raises(InvalidParameter, match="Err 1"):
        lights.set_brightness(9, 10)
    assert 9 not in lights.settings
    assert lights.last_error() == 1
    assert lights.last_error() == 0


@pytest.mark.parametrize("command, error", [
    ("RS9,10", InvalidParameter), ("XY1", UnknownCommand), ("RS1,abc", BadNumber),
    ("RS1", WrongParameterCount), ("RS1,150", ValueClamped)])
def test_driver_and_simulator_agree_on_every_error(lights, command, error):
    with pytest.raises(error):
        lights.protocol.transact(command)


def test_clamped_brightness_raises_with_requested_and_applied_values(simulator, lights):
    with pytest.raises(ValueClamped) as raised:
        lights.set_brightness(1, 150)
    assert raised.value.requested == ChannelState(1, ChannelMode.CONTINUOUS, 150.0)
    assert raised.value.applied == ChannelState(1, ChannelMode.CONTINUOUS, 100.0)
    assert simulator.channel(1).percent == 100.0
    assert lights.settings[1].percent == 100.0  # what is really in effect is remembered


def test_clamped_pulse_reports_the_limits_applied(simulator, lights):
    with pytest.raises(ValueClamped) as raised:
        lights.set_pulse(2, 250_000, 10, 260)
    assert raised.value.applied == ChannelState(2, ChannelMode.PULSE, 200.0, 100_000, 10)
    assert lights.settings[2] == raised.value.applied


def test_silent_controller_raises_timeout_and_recovers(simulator, lights):
    simulator.pty.go_silent()
    with pytest.raises(DeviceTimeout, match="did not answer 'ST1'"):
        lights.status(1)
    simulator.pty.resume()
    assert lights.status(1).mode is ChannelMode.OFF


def test_reply_without_prompt_is_a_protocol_error_then_the_line_recovers(simulator, lights):
    lights.set_brightness(1, 30)
    simulator.drop_next_prompt()
    with pytest.raises(ProtocolError, match="prompt"):
        lights.status(1)
    assert lights.status(1) == ChannelState(1, ChannelMode.CONTINUOUS, 30.0)


@pytest.mark.parametrize("noise", [b"\x00\xfe#\x13\xff", b"\xff>\x00", b"Err 5\r\n>"])
def test_garbage_in_a_reply_is_a_protocol_error_then_the_line_recovers(simulator, lights, noise):
    simulator.garble_next_reply(noise)
    with pytest.raises(ProtocolError):
        lights.set_brightness(1, 70)
    assert simulator.channel(1).percent == 70.0  # the controller did get the command
    assert lights.status(1) == ChannelState(1, ChannelMode.CONTINUOUS, 70.0)


def test_rest_of_a_garbled_reply_on_a_slow_line_does_not_spoil_the_next(simulator, lights):
    simulator.pty.bytes_per_s = 4000  # a noisy '>' ends the read early; the rest trickles in
    simulator.garble_next_reply(b"\xff>")
    with pytest.raises(ProtocolError):
        lights.set_brightness(1, 70)
    assert lights.status(1) == ChannelState(1, ChannelMode.CONTINUOUS, 70.0)


def test_unsolicited_noise_between_commands_is_ignored(simulator, lights):
    simulator.pty.inject(b"\xff\x00garbage>")
    lights.set_brightness(4, 20)
    assert lights.status(4).percent == 20.0


def test_unplug_and_return_reconnects_and_reapplies_settings(simulator, lights):
    lights.set_brightness(1, 80)
    lights.set_pulse(2, 600, 15, 140)
    simulator.pty.unplug()
    simulator.power_cycle()  # the controller lost power too: it forgot everything
    simulator.pty.replug()
    assert simulator.channel(1).mode is ChannelMode.OFF
    assert lights.status(1) == ChannelState(1, ChannelMode.CONTINUOUS, 80.0)
    assert simulator.channel(2) == ChannelState(2, ChannelMode.PULSE, 140.0, 600, 15)
    assert lights.reconnects == 1


def test_reconnect_keeps_lights_off_if_they_were_off(simulator, lights):
    lights.set_brightness(1, 80)
    lights.save()  # the controller will power up lit
    lights.off()
    simulator.pty.unplug()
    simulator.power_cycle()
    simulator.pty.replug()
    assert simulator.channel(1).percent == 80.0
    assert lights.firmware_version() == FIRMWARE_VERSION
    assert simulator.channel(1).mode is ChannelMode.OFF


def test_command_during_unplug_waits_for_the_adapter_to_return(simulator, lights):
    lights.set_brightness(3, 66)
    simulator.pty.unplug()
    simulator.power_cycle()
    timer = threading.Timer(0.3, simulator.pty.replug)
    timer.start()
    try:
        lights.set_brightness(1, 25)
    finally:
        timer.join()
    assert simulator.channel(1).percent == 25.0
    assert simulator.channel(3).percent == 66.0


def test_adapter_that_never_returns_raises_disconnected(simulator):
    with GardasoftController(simulator.port, timeout_s=0.3, reconnect_timeout_s=0.3) as lights:
        simulator.pty.unplug()
        with pytest.raises(DeviceDisconnected, match="did not come back"):
            lights.status(1)
        simulator.pty.replug()
        assert lights.status(1).mode is ChannelMode.OFF  # and it recovers later


def test_open_on_a_missing_port_raises_disconnected(tmp_path):
    with pytest.raises(DeviceDisconnected):
        GardasoftController(str(tmp_path / "ttyNONE")).open()


def test_a_closed_controller_refuses_commands(simulator):
    lights = GardasoftController(simulator.port).open()
    lights.close()
    with pytest.raises(DriverError, match="closed"):
        lights.status(1)


def test_local_validation_rejects_impossible_values(lights):
    for call in (lambda: lights.set_brightness(1, -5), lambda: lights.set_brightness(0, 5),
                 lambda: lights.set_pulse(1, 0, 0, 50),
                 lambda: lights.set_brightness(1, float("nan"))):
        with pytest.raises(ValueError):
            call()


def test_commands_from_two_threads_do_not_mix_replies(simulator, lights):
    lights.set_brightness(1, 11)
    lights.set_brightness(2, 22)
    results: dict[int, list[float]] = {1: [], 2: []}

    def poll(channel: int) -> None:
        for _ in range(50):
            results[channel].append(lights.status(channel).percent)

    threads = [threading.Thread(target=poll, args=(c,)) for c in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results == {1: [11.0] * 50, 2: [22.0] * 50}
