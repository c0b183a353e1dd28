"""SerialLink and PtySimulator over real pseudo-terminals: framing, timeouts, unplug and return."""

from __future__ import annotations

import os
import threading

import pytest

from drivers.errors import DeviceDisconnected, DeviceTimeout
from drivers.serial_link import SerialLink
from drivers.simulator_pty import PtySimulator


# A blocked read fails the test instead of hanging the run; not a speed check.
pytestmark = pytest.mark.timeout(30)


class Echo:
    """Answers every chunk with the same bytes upper-cased."""

    def feed(self, data: bytes) -> bytes:
        return data.upper()


@pytest.fixture
def echo_pty():
    with PtySimulator(Echo(), name="echo") as simulator:
        yield simulator


def test_pty_port_is_a_real_terminal_device(echo_pty):
    assert echo_pty.port.startswith("/dev/pts/")
    fd = os.open(echo_pty.port, os.O_RDWR | os.O_NOCTTY)
    try:
        assert os.isatty(fd)
    finally:
        os.close(fd)


def test_round_trip_through_the_handler(echo_pty):
    with SerialLink(echo_pty.port) as link:
        link.write(b"hello\r")
        assert link.read_until(b"\r", timeout_s=2) == b"HELLO\r"


def test_bytes_after_a_terminator_are_kept_for_the_next_read(echo_pty):
    with SerialLink(echo_pty.port) as link:
        echo_pty.inject(b"one\rtwo\nthree")
        assert link.read_until((b"\r", b"\n"), timeout_s=2) == b"one\r"
        assert link.read_until((b"\r", b"\n"), timeout_s=2) == b"two\n"
        with pytest.raises(DeviceTimeout):
            link.read_until(b"\r", timeout_s=0.2)
        assert link.peek_input() == b"three"
        assert link.discard_input() == b"three"
        assert link.peek_input() == b""


def test_paced_line_delivers_every_byte_in_order(echo_pty):
    echo_pty.bytes_per_s = 20_000
    with SerialLink(echo_pty.port) as link:
        echo_pty.inject(bytes(range(32, 127)) + b"\r")
        assert link.read_until(b"\r", timeout_s=2) == bytes(range(32, 127)) + b"\r"


def test_silent_port_times_out(echo_pty):
    echo_pty.go_silent()
    with SerialLink(echo_pty.port) as link:
        link.write(b"anyone\r")
        with pytest.raises(DeviceTimeout, match=echo_pty.port):
            link.read_until(b"\r", timeout_s=0.2)
        echo_pty.resume()
        link.write(b"again\r")
        assert link.read_until(b"\r", timeout_s=2) == b"AGAIN\r"


def test_drain_until_quiet_drops_the_rest_of_a_burst(echo_pty):
    echo_pty.bytes_per_s = 4000  # the burst trickles in over 25 ms, like a slow line
    with SerialLink(echo_pty.port) as link:
        burst = threading.Thread(target=echo_pty.inject, args=(b"x" * 100,))
        burst.start()
        assert link.read_until(b"x", timeout_s=2) == b"x"  # the burst has begun
        link.drain_until_quiet(quiet_s=0.05, timeout_s=2)
        burst.join()
        echo_pty.inject(b"ok\r")
        assert link.read_until(b"\r", timeout_s=2) == b"ok\r"


def test_opening_a_missing_port_says_which(tmp_path):
    missing = str(tmp_path / "ttyNOPE")
    with pytest.raises(DeviceDisconnected, match="ttyNOPE"):
        SerialLink(missing).open()


def test_unplugged_port_fails_reads_and_writes_as_disconnected(echo_pty):
    link = SerialLink(echo_pty.port).open()
    echo_pty.unplug()
    with pytest.raises(DeviceDisconnected):
        link.write(b"x\r")
        link.read_until(b"\r", timeout_s=2)
    assert not link.is_open
    with pytest.raises(DeviceDisconnected):
        link.write(b"y\r")


def test_stable_link_follows_replug_and_reopen_finds_it(tmp_path):
    stable = tmp_path / "ttyECHO"
    with PtySimulator(Echo(), link_path=stable) as simulator:
        first = simulator.device_path
        assert os.readlink(stable) == first
        link = SerialLink(str(stable)).open()
        simulator.unplug()
        assert not stable.exists() and not stable.is_symlink()
        simulator.replug()
        assert os.readlink(stable) == simulator.device_path
        link.reopen(timeout_s=2)
        link.write(b"back\r")
        assert link.read_until(b"\r", timeout_s=2) == b"BACK\r"
        link.close()
    assert not stable.is_symlink()


def test_reopen_waits_for_a_port_that_comes_back_later(tmp_path):
    stable = tmp_path / "ttyECHO"
    with PtySimulator(Echo(), link_path=stable) as simulator:
        link = SerialLink(str(stable)).open()
        simulator.unplug()
        timer = threading.Timer(0.3, simulator.replug)
        timer.start()
        try:
            link.reopen(timeout_s=5)
        finally:
            timer.join()
        link.write(b"late\r")
        assert link.read_until(b"\r", timeout_s=2) == b"LATE\r"
        link.close()


def test_reopen_gives_up_when_the_port_stays_away(tmp_path):
    stable = tmp_path / "ttyECHO"
    with PtySimulator(Echo(), link_path=stable) as simulator:
        link = SerialLink(str(stable)).open()
        simulator.unplug()
        with pytest.raises(DeviceDisconnected, match="did not come back"):
            link.reopen(timeout_s=0.3)


def test_stop_is_idempotent_and_a_stopped_simulator_has_no_port():
    simulator = PtySimulator(Echo()).start()
    simulator.stop()
    simulator.stop()
    with pytest.raises(RuntimeError):
        _ = simulator.port
