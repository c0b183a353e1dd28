"""The serial barcode scanner against its simulator on a real pty."""

from __future__ import annotations

import time

import pytest

from drivers.scanner import CheckDigitMode, CodeRules, RejectReason, ScanRejected, SerialScanner
from drivers.scanner.simulator import LINE_ENDINGS, ScannerSimulator


# A blocked read fails the test instead of hanging the run; not a speed check.
pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def rejected() -> list[ScanRejected]:
    return []


@pytest.fixture
def simulator(tmp_path):
    with ScannerSimulator(link_path=str(tmp_path / "ttySCAN")) as sim:
        yield sim


@pytest.fixture
def scanner(simulator, rejected):
    with SerialScanner(simulator.port, on_rejected=rejected.append) as scanner:
        yield scanner


def read(scanner: SerialScanner) -> str | None:
    scanned = scanner.read_code(timeout_s=2)
    return scanned.code if scanned else None


@pytest.mark.parametrize("ending", sorted(LINE_ENDINGS))
def test_codes_arrive_in_order_with_any_line_ending(simulator, scanner, rejected, ending):
    simulator.line_ending = LINE_ENDINGS[ending]
    simulator.scan("4006381333931")
    simulator.scan("ITEM-0042")
    assert read(scanner) == "4006381333931"
    assert read(scanner) == "ITEM-0042"
    assert rejected == []  # the LF of CR LF is not an empty scan


def test_bad_check_digit_is_reported_not_delivered(simulator, scanner, rejected):
    simulator.scan("4006381333932")
    simulator.scan("5901234123457")
    assert read(scanner) == "5901234123457"
    assert [(r.raw, r.reason) for r in rejected] == [(b"4006381333932",
                                                      RejectReason.BAD_CHECK_DIGIT)]


@pytest.mark.parametrize("raw, reason", [
    (b"AB1", RejectReason.TOO_SHORT),
    (b"X" * 40, RejectReason.TOO_LONG),
    (b"ITEM#42", RejectReason.ILLEGAL_CHARACTER),
    (b"\xff\xfe\x01ITEM", RejectReason.NOT_TEXT),
])
def test_misreads_are_reported_with_their_reason(simulator, scanner, rejected, raw, reason):
    simulator.scan(raw)
    simulator.scan("96385074")
    assert read(scanner) == "96385074"
    assert [(r.raw, r.reason) for r in rejected] == [(raw, reason)]


def test_no_scan_returns_none_after_the_timeout(scanner, rejected):
    assert scanner.read_code(timeout_s=0.2) is None
    assert rejected == []


def test_endless_line_without_terminator_is_dropped_and_reported(simulator, scanner, rejected):
    simulator.pty.inject(b"Z" * 300)
    assert scanner.read_code(timeout_s=0.3) is None
    assert [r.reason for r in rejected] == [RejectReason.TOO_LONG]
    simulator.scan("ITEM-0042")
    assert read(scanner) == "ITEM-0042"


def test_strict_ean_upc_rules(simulator, rejected):
    rules = CodeRules(check_digit=CheckDigitMode.EAN_UPC)
    with SerialScanner(simulator.port, rules=rules, on_rejected=rejected.append) as scanner:
        simulator.scan("ITEM-0042")
        simulator.scan("036000291452")
        assert read(scanner) == "036000291452"
    assert [r.reason for r in rejected] == [RejectReason.NOT_EAN_UPC]


def wait_for(condition, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_background_reading_survives_unplug_and_return(simulator, scanner, rejected):
    codes: list[str] = []
    scanner.start(lambda scanned: codes.append(scanned.code))
    try:
        simulator.scan("ITEM-0001")
        assert wait_for(lambda: codes == ["ITEM-0001"])
        simulator.pty.unplug()
        time.sleep(0.1)
        simulator.pty.replug()
        # Scans sent before the reader reopened the port are lost, as on a real line:
        # keep scanning until one arrives, like an associate would.
        assert wait_for(lambda: simulator.scan("ITEM-0002") or "ITEM-0002" in codes)
        simulator.scan("4006381333932")
        simulator.scan("ITEM-0003")
        assert wait_for(lambda: "ITEM-0003" in codes)
    finally:
        scanner.stop()
    assert set(codes) == {"ITEM-0001", "ITEM-0002", "ITEM-0003"}
    assert [r.reason for r in rejected] == [RejectReason.BAD_CHECK_DIGIT]


def test_standalone_simulator_scans_its_codes_in_turn(tmp_path, rejected):
    import select
    import subprocess
    import sys

    link = tmp_path / "ttySCAN"
    process = subprocess.Popen(
        [sys.executable, "-m", "drivers.scanner.simulator", "--link", str(link),
         "--codes", "ITEM-0042", "4006381333932", "--interval", "0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready, _, _ = select.select([process.stdout], [], [], 15)
        assert ready, "simulator printed no port"
        assert process.stdout.readline().strip() == str(link)
        with SerialScanner(str(link), on_rejected=rejected.append) as scanner:
            assert read(scanner) == "ITEM-0042"
            assert read(scanner) == "ITEM-0042"  # the bad one in between is not delivered
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
    assert RejectReason.BAD_CHECK_DIGIT in [r.reason for r in rejected]
