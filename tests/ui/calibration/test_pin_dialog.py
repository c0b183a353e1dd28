"""The technician PIN dialog over a real PIN file (scrypt, lockout) and the real wizard
opener: masked digits from the keypad, attempts left, lockout with a countdown that the
file keeps, and the wizard only behind the right PIN."""

from __future__ import annotations

import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QDialog, QLineEdit

from calibration.pin import PinStore, ScryptParameters
from calibration.profile import ProfileStore
from calibration.wizard import CalibrationWizard, open_wizard
from ui.calibration.pin_dialog import BACKSPACE, CLEAR, PinDialog, countdown_text

PIN = "4711"
FAST = ScryptParameters(n=2 ** 10)      # the stored cost is what verify uses


class Clock:
    """The PIN store's clock, so a 15-minute lockout can pass in a test."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pins(tmp_path, clock) -> PinStore:
    store = PinStore(tmp_path / "pin.json", max_failures=3, lockout_minutes=15, clock=clock,
                     parameters=FAST)
    store.set_pin(PIN)
    return store


def make_dialog(qtbot, pins: PinStore, tmp_path) -> PinDialog:
    profiles = ProfileStore(tmp_path / "profiles")
    dialog = PinDialog(pins, lambda pin: open_wizard(pins, pin, profiles, station_id="bay-3"),
                       tick_ms=20)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def tap(qtbot, dialog: PinDialog, digits: str, submit: bool = True) -> None:
    for digit in digits:
        qtbot.mouseClick(dialog.keys[digit], Qt.MouseButton.LeftButton)
    if submit:
        qtbot.mouseClick(dialog.enter_button, Qt.MouseButton.LeftButton)


def test_digits_are_masked_and_the_keypad_edits_them(qtbot, pins, tmp_path):
    dialog = make_dialog(qtbot, pins, tmp_path)
    assert dialog.entry.echoMode() is QLineEdit.EchoMode.Password
    assert not dialog.enter_button.isEnabled()          # nothing to submit yet
    tap(qtbot, dialog, "123", submit=False)
    qtbot.mouseClick(dialog.keys[BACKSPACE], Qt.MouseButton.LeftButton)
    assert dialog.entry.text() == "12" and dialog.enter_button.isEnabled()
    qtbot.mouseClick(dialog.keys[CLEAR], Qt.MouseButton.LeftButton)
    assert dialog.entry.text() == ""
    qtbot.keyClicks(dialog.entry, "9a8")                 # the keyboard takes digits only
    assert dialog.entry.text() == "98"


def test_a_wrong_pin_shows_the_attempts_left_and_opens_nothing(qtbot, pins, tmp_path):
    dialog = make_dialog(qtbot, pins, tmp_path)
    tap(qtbot, dialog, "1234")
    assert dialog.result() != QDialog.DialogCode.Accepted and dialog.opened is None
    assert dialog.remaining == 2
    assert "2 attempts left" in dialog.message.text()
    assert dialog.entry.text() == "" and not dialog.blocked
    assert pins.status().failures == 1


def test_the_right_pin_opens_the_wizard(qtbot, pins, tmp_path):
    dialog = make_dialog(qtbot, pins, tmp_path)
    tap(qtbot, dialog, "0000")
    with qtbot.waitSignal(dialog.accepted, timeout=5000):
        tap(qtbot, dialog, PIN)
    assert isinstance(dialog.opened, CalibrationWizard)
    assert dialog.opened.station_id == "bay-3"
    assert pins.status().failures == 0                  # a right PIN clears the count


def test_lockout_after_repeated_failures_counts_down_and_survives_reopening(
        qtbot, pins, tmp_path, clock):
    dialog = make_dialog(qtbot, pins, tmp_path)
    for attempt in ("1111", "2222", "3333"):
        tap(qtbot, dialog, attempt)
    assert dialog.blocked and dialog.locked_until == pytest.approx(clock.now + 15 * 60)
    assert "locked" in dialog.message.text() and "15:00" in dialog.message.text()
    assert not any(key.isEnabled() for key in dialog.keys.values())
    assert not dialog.enter_button.isEnabled() and not dialog.entry.isEnabled()
    dialog.press("4")                                   # no way around the lock
    dialog.entry.setText(PIN)
    dialog.submit()
    assert dialog.opened is None
    clock.now += 5 * 60 + 30
    qtbot.waitUntil(lambda: "9:30" in dialog.message.text(), timeout=2000)

    again = make_dialog(qtbot, pins, tmp_path)          # the lock lives in the PIN file
    assert again.blocked and "9:30" in again.message.text()

    clock.now += 10 * 60
    qtbot.waitUntil(lambda: not again.blocked, timeout=2000)
    assert "lock has ended" in again.message.text()
    with qtbot.waitSignal(again.accepted, timeout=5000):
        tap(qtbot, again, PIN)
    assert isinstance(again.opened, CalibrationWizard)


def test_without_a_pin_set_the_dialog_says_how_and_offers_nothing(qtbot, tmp_path):
    pins = PinStore(tmp_path / "none.json", parameters=FAST)
    dialog = make_dialog(qtbot, pins, tmp_path)
    assert dialog.blocked and "station-app profile set-pin" in dialog.message.text()
    assert not dialog.keys["1"].isEnabled() and dialog.cancel_button.isEnabled()
    with qtbot.waitSignal(dialog.rejected, timeout=2000):
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert dialog.opened is None


@pytest.mark.parametrize("seconds, text", [(0, "0:00"), (0.2, "0:01"), (59, "0:59"),
                                           (60, "1:00"), (899.5, "15:00")])
def test_countdown_text_rounds_up(seconds, text):
    assert countdown_text(seconds) == text


def test_enter_on_the_keyboard_submits_once(qtbot, pins, tmp_path):
    dialog = make_dialog(qtbot, pins, tmp_path)
    qtbot.keyClicks(dialog.entry, "9999")
    qtbot.keyClick(dialog.entry, Qt.Key.Key_Return)
    assert pins.status().failures == 1 and "2 attempts left" in dialog.message.text()
    qtbot.keyClicks(dialog.entry, PIN)
    with qtbot.waitSignal(dialog.accepted, timeout=5000):
        qtbot.keyClick(dialog.entry, Qt.Key.Key_Enter)
    assert isinstance(dialog.opened, CalibrationWizard)
