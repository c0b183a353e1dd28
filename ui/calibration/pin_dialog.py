"""The technician PIN in front of the calibration wizard: masked digits, a touch keypad.

The dialog's only way to the wizard is its ``opener``, which verifies the PIN
(``calibration.wizard.open_wizard`` checks it with ``calibration.pin.PinStore`` before it
builds anything). A wrong PIN shows the attempts left; too many lock the wizard for a
while, shown as a countdown with the keypad off (the lock lives in the PIN file, so
closing and reopening the dialog, or restarting the station, does not lift it). With no
PIN set, the dialog says how to set one and offers nothing else. Cancel is the only
other way out, and it opens nothing. An opener that fails for another reason after the
PIN was accepted (a ``StationError``: the camera does not open) is told in the dialog.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from PyQt6.QtCore import QRegularExpression, Qt, QTimer
from PyQt6.QtGui import QKeyEvent, QRegularExpressionValidator
from PyQt6.QtWidgets import (QDialog, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                             QSizePolicy, QVBoxLayout, QWidget)

from calibration.pin import PinError, PinLocked, PinNotSet, PinRejected, PinStore
from station_app.errors import StationError
from ui.style import ACCENT, BORDER, SURFACE, SURFACE_RAISED, TEXT, TEXT_MUTED, style_sheet

Opener = Callable[[str], Any]
MAX_DIGITS = 12
CLEAR, BACKSPACE = "Clear", "⌫"


def countdown_text(seconds: float) -> str:
    """``754`` -> ``"12:34"``: minutes and seconds left, rounded up."""
    seconds = max(0, math.ceil(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def pin_style(scale: float = 1.0) -> str:
    def px(value: float) -> str:
        return f"{round(value * scale)}px"

    return style_sheet(scale) + f"""
    QDialog#pinDialog {{ background: #12171b; }}
    #pinTitle {{ font-size: {px(30)}; font-weight: 700; }}
    #pinSubtitle {{ color: {TEXT_MUTED}; font-size: {px(18)}; }}
    #pinEntry {{ font-size: {px(40)}; letter-spacing: {px(8)}; min-height: {px(64)}; }}
    #pinMessage {{ font-size: {px(19)}; color: {TEXT_MUTED}; }}
    #pinMessage[tone="error"] {{ color: #ff8a80; }}
    #pinMessage[tone="locked"] {{ color: #ffcf66; font-weight: 600; }}
    #pinKey, #pinAction, #pinEnter {{ background: {SURFACE_RAISED}; border: 1px solid {BORDER};
        border-radius: {px(10)}; font-size: {px(28)}; font-weight: 600; color: {TEXT};
        min-height: {px(70)}; min-width: {px(96)}; }}
    #pinAction {{ font-size: {px(20)}; }}
    #pinKey:pressed, #pinAction:pressed {{ background: {BORDER}; }}
    #pinEnter {{ background: {ACCENT}; border-color: {ACCENT}; font-size: {px(22)}; }}
    #pinKey:disabled, #pinAction:disabled, #pinEnter:disabled {{ background: {SURFACE};
        color: #5d6b74; border-color: #232c32; }}
    """


class PinDialog(QDialog):
    """Asks for the technician PIN; accepted only when ``opener(pin)`` succeeds, whose
    result (the wizard) is then :attr:`opened`.

    ``opener`` raises ``PinRejected``, ``PinLocked`` or ``PinNotSet`` for a PIN that does
    not open (``open_wizard`` does). ``tick_ms`` is how often the lockout countdown moves.
    """

    def __init__(self, pins: PinStore, opener: Opener, *, title: str = "Station calibration",
                 tick_ms: int = 1000, scale: float = 1.0,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pins = pins
        self._opener = opener
        self.opened: Any = None
        self.locked_until: float | None = None
        self.remaining: int | None = None     # attempts left after the last wrong PIN
        self.setObjectName("pinDialog")
        self.setWindowTitle(f"{title}: technician PIN")
        self.setModal(True)
        self.setStyleSheet(pin_style(scale))

        heading = QLabel(title)
        heading.setObjectName("pinTitle")
        subtitle = QLabel("For technicians only. Enter your PIN to calibrate the camera, "
                          "lights, tray and thresholds.")
        subtitle.setObjectName("pinSubtitle")
        subtitle.setWordWrap(True)

        self.entry = QLineEdit()
        self.entry.setObjectName("pinEntry")
        self.entry.setEchoMode(QLineEdit.EchoMode.Password)
        self.entry.setMaxLength(MAX_DIGITS)
        self.entry.setValidator(QRegularExpressionValidator(QRegularExpression(r"\d{0,12}")))
        self.entry.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.entry.setPlaceholderText("PIN")
        self.entry.returnPressed.connect(self.submit)
        self.entry.textChanged.connect(self._update_buttons)

        self.message = QLabel()
        self.message.setObjectName("pinMessage")
        self.message.setWordWrap(True)
        self.message.setMinimumHeight(round(56 * scale))

        keypad = QGridLayout()
        keypad.setSpacing(round(10 * scale))
        self.keys: dict[str, QPushButton] = {}
        layout_keys = ["1", "2", "3", "4", "5", "6", "7", "8", "9", CLEAR, "0", BACKSPACE]
        for index, key in enumerate(layout_keys):
            button = QPushButton(key)
            button.setObjectName("pinKey" if key.isdigit() else "pinAction")
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            button.clicked.connect(lambda _=False, key=key: self.press(key))
            keypad.addWidget(button, index // 3, index % 3)
            self.keys[key] = button

        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("pinAction")
        self.cancel_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.cancel_button.clicked.connect(self.reject)
        self.enter_button = QPushButton("Open calibration")
        self.enter_button.setObjectName("pinEnter")
        self.enter_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.enter_button.clicked.connect(self.submit)
        actions = QHBoxLayout()
        actions.setSpacing(round(10 * scale))
        actions.addWidget(self.cancel_button, 1)
        actions.addWidget(self.enter_button, 2)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(*(round(28 * scale),) * 4)
        layout.setSpacing(round(14 * scale))
        layout.addWidget(heading)
        layout.addWidget(subtitle)
        layout.addWidget(self.entry)
        layout.addWidget(self.message)
        layout.addLayout(keypad)
        layout.addLayout(actions)
        self.setMinimumWidth(round(460 * scale))

        self._timer = QTimer(self)
        self._timer.setInterval(tick_ms)
        self._timer.timeout.connect(self._tick)
        self._blocked = False
        self._show_initial_state()

    # -- input -----------------------------------------------------------------------------

    def press(self, key: str) -> None:
        """A keypad key: a digit, Clear or backspace."""
        if self._blocked:
            return
        if key == CLEAR:
            self.entry.clear()
        elif key == BACKSPACE:
            self.entry.backspace()
        elif key.isdigit() and len(self.entry.text()) < MAX_DIGITS:
            self.entry.setText(self.entry.text() + key)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        # Enter belongs to the PIN (submit), never to a default button.
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.submit()
            return
        super().keyPressEvent(event)

    def submit(self) -> None:
        """Try the PIN: the wizard opens (dialog accepted) or the message says why not."""
        pin = self.entry.text()
        if self._blocked or not pin:
            return
        self.entry.clear()
        try:
            self.opened = self._opener(pin)
        except PinRejected as error:
            message = str(error)
            self._say(message[:1].upper() + message[1:] + ".", "error")
            self.remaining = error.remaining
        except PinLocked as error:
            self._lock(error.until)
        except PinNotSet as error:
            self._refuse(str(error))
        except PinError as error:      # an unreadable PIN file
            self._refuse(str(error))
        except StationError as error:  # the right PIN, but camera or lights do not open
            self._say(f"Calibration cannot start: {error}. Fix it and enter the PIN again, "
                      f"or cancel.", "error")
        else:
            self.accept()

    # -- states ----------------------------------------------------------------------------

    def _show_initial_state(self) -> None:
        try:
            status = self.pins.status()
        except PinError as error:
            self._refuse(str(error))
            return
        if not status.is_set:
            self._refuse("No technician PIN is set: set one with `station-app profile "
                         "set-pin`, then open calibration again.")
        elif status.locked_until is not None:
            self._lock(status.locked_until)
        else:
            left = self.pins.max_failures - status.failures
            self._say("Enter the technician PIN." if not status.failures else
                      f"Enter the technician PIN ({left} attempt{'s' if left != 1 else ''} "
                      f"left before calibration locks).", "")
        self._update_buttons()

    def _lock(self, until: float) -> None:
        self.locked_until = until
        self._set_blocked(True)
        self._tick()
        self._timer.start()

    def _tick(self) -> None:
        if self.locked_until is None:
            return
        left = self.locked_until - self.pins.clock()
        if left <= 0:
            self.locked_until = None
            self._timer.stop()
            self._set_blocked(False)
            self._say("The lock has ended: enter the technician PIN.", "")
            return
        self._say(f"Too many wrong PINs: calibration is locked. Try again in "
                  f"{countdown_text(left)}.", "locked")

    def _refuse(self, message: str) -> None:
        """Nothing to enter (no PIN set, unreadable PIN file): only Cancel is left."""
        self._timer.stop()
        self._set_blocked(True)
        self._say(message, "error")

    def _set_blocked(self, blocked: bool) -> None:
        self._blocked = blocked
        self.entry.setEnabled(not blocked)
        for button in self.keys.values():
            button.setEnabled(not blocked)
        self._update_buttons()
        if not blocked:
            self.entry.setFocus()

    def _update_buttons(self) -> None:
        self.enter_button.setEnabled(not self._blocked and bool(self.entry.text()))

    def _say(self, text: str, tone: str) -> None:
        self.message.setText(text)
        if self.message.property("tone") != tone:
            self.message.setProperty("tone", tone)
            self.message.style().unpolish(self.message)
            self.message.style().polish(self.message)

    @property
    def blocked(self) -> bool:
        """True while locked out (or with no PIN set): no digit can be entered."""
        return self._blocked

    def done(self, result: int) -> None:
        self._timer.stop()
        super().done(result)
