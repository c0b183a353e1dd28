"""The associate's word on a verdict: agree in one tap, or correct severity and types.

With nothing chosen, the primary button agrees with the verdict (OK: severity none;
DAMAGED: minor with the likely types, as the station records an agreement). Choosing a
severity or toggling a defect type turns it into "save correction". The choices stay
consistent with what the capture store accepts: severity none clears the types, and a
type chosen while the severity is none makes it minor. A REVIEW verdict has nothing to
agree with: the associate must choose a severity. Each choice has a key (1/2/3, a letter
per type, Backspace clears, Enter saves), shown on its button.
"""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from engines.taxonomy import DEFECT_TYPES
from station_app.workflow.commands import Confirm, Severity
from ui.action_button import ActionButton
from ui.verdict_banner import pretty_type

SEVERITY_KEYS: dict[Severity, str] = {Severity.NONE: "1", Severity.MINOR: "2",
                                      Severity.MAJOR: "3"}
TYPE_KEYS: dict[str, str] = {"penetration": "P", "deformation": "D", "actuation": "A",
                             "deconstruction": "C", "spillage": "L", "superficial": "S",
                             "missing_unit": "M"}
AGREE_KEYS = ("Return", "Enter")
CLEAR_KEY = "Backspace"
assert set(TYPE_KEYS) == set(DEFECT_TYPES), "every defect type needs a key"


class ConfirmPanel(QWidget):
    """Emits :attr:`confirm_requested` with a ``Confirm`` command; never submits itself."""

    confirm_requested = pyqtSignal(object)

    def __init__(self, font_scale: float = 1.0, button_height: int = 64,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._label: str | None = None
        self._likely: tuple[str, ...] = ()
        self._severity: Severity | None = None
        self._types: set[str] = set()
        self._sent = False             # a Confirm is on its way: one press, one command

        self.agree_action = self._action("Agree", AGREE_KEYS, self.submit)
        self.clear_action = self._action("Clear choice", (CLEAR_KEY,), self.clear_selection)
        self.severity_actions: dict[Severity, QAction] = {}
        for severity, key in SEVERITY_KEYS.items():
            action = self._action(severity.value.capitalize(), (key,),
                                  lambda _=False, s=severity: self.select_severity(s),
                                  checkable=True)
            self.severity_actions[severity] = action
        self.type_actions: dict[str, QAction] = {}
        for name in DEFECT_TYPES:
            action = self._action(pretty_type(name).capitalize(), (TYPE_KEYS[name],),
                                  lambda _=False, n=name: self.toggle_type(n), checkable=True)
            self.type_actions[name] = action

        self.agree_button = ActionButton(self.agree_action, "Enter", role="primary",
                                         height=round(button_height * 1.25))
        self.severity_buttons = {s: ActionButton(a, SEVERITY_KEYS[s], role="toggle",
                                                 height=button_height)
                                 for s, a in self.severity_actions.items()}
        self.type_buttons = {n: ActionButton(a, TYPE_KEYS[n], role="toggle",
                                             height=button_height)
                             for n, a in self.type_actions.items()}
        clear_button = ActionButton(self.clear_action, "⌫ Backspace", height=button_height)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(round(8 * font_scale))
        layout.addWidget(self.agree_button)
        layout.addWidget(_heading("Or correct it: severity", font_scale))
        severities = QGridLayout()
        severities.setSpacing(8)
        for column, button in enumerate(self.severity_buttons.values()):
            severities.addWidget(button, 0, column)
        layout.addLayout(severities)
        layout.addWidget(_heading("Defect types", font_scale))
        types = QGridLayout()
        types.setSpacing(8)
        for index, button in enumerate([*self.type_buttons.values(), clear_button]):
            types.addWidget(button, index // 4, index % 4)
        layout.addLayout(types)
        layout.addStretch(1)
        self.stop()

    def _action(self, text: str, keys: tuple[str, ...], slot, checkable: bool = False
                ) -> QAction:
        action = QAction(text, self)
        action.setShortcuts([QKeySequence(key) for key in keys])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setCheckable(checkable)
        action.setAutoRepeat(False)    # a held key is one press, not a stream of them
        action.triggered.connect(slot)
        return action

    def window_actions(self) -> list[QAction]:
        """Add these to the window, so their keys work wherever the focus is."""
        return [self.agree_action, self.clear_action, *self.severity_actions.values(),
                *self.type_actions.values()]

    # -- verdict in, command out -----------------------------------------------------------

    def start(self, label: str, likely_types: tuple[str, ...]) -> None:
        """A verdict waits for the associate: fresh choices, everything enabled."""
        self._label, self._likely = label, tuple(likely_types)
        self._severity, self._types = None, set()
        self._sent = False
        self._set_enabled(True)
        self._refresh()

    def stop(self) -> None:
        """No verdict to confirm (or it is being saved): nothing can be pressed."""
        self._sent = False
        self._set_enabled(False)
        self._refresh()

    def resume(self) -> None:
        """The Confirm sent was refused (CommandIgnored) and the verdict still waits: the
        choices made are kept and can be pressed again."""
        if self._sent and self._label is not None:
            self._sent = False
            self._set_actions_enabled(True)
            self._refresh()

    @property
    def active(self) -> bool:
        return self.agree_action.isEnabled() or self.severity_actions[Severity.NONE].isEnabled()

    @property
    def severity(self) -> Severity | None:
        return self._severity

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(t for t in DEFECT_TYPES if t in self._types)

    def select_severity(self, severity: Severity) -> None:
        self._severity = severity
        if severity is Severity.NONE:
            self._types.clear()
        self._refresh()

    def toggle_type(self, name: str) -> None:
        self._types.symmetric_difference_update({name})
        if self._types and self._severity in (None, Severity.NONE):
            self._severity = Severity.MINOR
        self._refresh()

    def clear_selection(self) -> None:
        self._severity, self._types = None, set()
        self._refresh()

    def build_confirm(self) -> Confirm | None:
        """The command for what is chosen now; None when nothing can be saved yet."""
        if self._label is None:
            return None
        if self._severity is None:
            if self._label == "OK":
                return Confirm(agree=True, severity=Severity.NONE)
            if self._label == "DAMAGED":
                return Confirm(agree=True, severity=Severity.MINOR,
                               defect_types=tuple(t for t in DEFECT_TYPES if t in self._likely))
            return None                       # REVIEW: the associate has to decide
        agrees = ((self._label == "OK" and self._severity is Severity.NONE)
                  or (self._label == "DAMAGED" and self._severity is not Severity.NONE
                      and self._types == set(self._likely)))
        return Confirm(agree=agrees, severity=self._severity, defect_types=self.types)

    def submit(self) -> None:
        """Emit the Confirm once: everything stays disabled until the workflow answers
        (a state change restarts or stops the panel; a refusal calls :meth:`resume`)."""
        command = self.build_confirm()
        if command is not None and self.agree_action.isEnabled() and not self._sent:
            self._sent = True
            self._set_actions_enabled(False)
            self.confirm_requested.emit(command)

    # -- display ---------------------------------------------------------------------------

    def _set_enabled(self, enabled: bool) -> None:
        self._set_actions_enabled(enabled)
        if not enabled:
            self._label = None

    def _set_actions_enabled(self, enabled: bool) -> None:
        for action in self.window_actions():
            action.setEnabled(enabled)

    def _refresh(self) -> None:
        for severity, action in self.severity_actions.items():
            action.setChecked(severity is self._severity)
        for name, action in self.type_actions.items():
            action.setChecked(name in self._types)
            self.type_buttons[name].set_marked(name in self._likely and self._label is not None)
        command = self.build_confirm()
        if self._label is None:
            text = "Agree"
        elif self._severity is None and command is not None:
            text = f"✓  Agree: {self._label}"
        elif command is None:
            text = "Choose a severity (1 · 2 · 3)"
        else:
            chosen = [command.severity.value]
            chosen += [pretty_type(t) for t in command.defect_types]
            word = "Agree" if command.agree else "Save correction"
            text = f"{word}: " + " · ".join(chosen)
        self.agree_action.setText(text)
        if self._label is not None and not self._sent:
            self.agree_action.setEnabled(command is not None)


def _heading(text: str, font_scale: float) -> QLabel:
    label = QLabel(text)
    label.setObjectName("sectionHeading")
    return label
