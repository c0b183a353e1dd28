"""The confirm panel turns taps and keys into Confirm commands the store accepts."""

from __future__ import annotations

import pytest

from station_app.store.records import Confirmation
from station_app.workflow import Confirm
from station_app.workflow.commands import Severity
from ui.confirm_panel import SEVERITY_KEYS, TYPE_KEYS, ConfirmPanel


@pytest.fixture
def panel(qtbot):
    made = ConfirmPanel()
    qtbot.addWidget(made)
    sent: list = []
    made.confirm_requested.connect(sent.append)
    made.sent = sent
    return made


def _storable(command: Confirm) -> None:
    """What the capture store will make of it (raises on an inconsistent answer)."""
    Confirmation("badge", command.severity.value, command.agree, command.defect_types)


def test_nothing_can_be_pressed_without_a_verdict(panel):
    assert not panel.active and not panel.agree_action.isEnabled()
    panel.submit()
    assert panel.sent == [] and panel.build_confirm() is None


@pytest.mark.parametrize("label, likely, expected", [
    ("OK", (), Confirm(agree=True, severity=Severity.NONE)),
    ("DAMAGED", ("spillage", "deformation"),
     Confirm(agree=True, severity=Severity.MINOR, defect_types=("deformation", "spillage"))),
])
def test_agree_in_one_press(panel, label, likely, expected):
    panel.start(label, likely)
    assert panel.agree_action.text() == f"✓  Agree: {label}"
    panel.agree_action.trigger()
    assert panel.sent == [expected]
    _storable(panel.sent[0])


def test_review_needs_a_severity(panel):
    panel.start("REVIEW", ("superficial",))
    assert not panel.agree_action.isEnabled()
    assert panel.agree_action.text().startswith("Choose a severity")
    panel.submit()
    assert panel.sent == []
    panel.severity_actions[Severity.NONE].trigger()
    assert panel.agree_action.isEnabled()
    panel.agree_action.trigger()
    assert panel.sent == [Confirm(agree=False, severity=Severity.NONE)]


def test_choices_stay_consistent_with_what_the_store_accepts(panel):
    panel.start("OK", ())
    panel.type_actions["actuation"].trigger()              # a type while severity is unset
    assert panel.severity is Severity.MINOR and panel.types == ("actuation",)
    panel.severity_actions[Severity.NONE].trigger()        # none clears the types
    assert panel.types == () and not panel.type_actions["actuation"].isChecked()
    panel.type_actions["penetration"].trigger()            # a type turns none into minor
    panel.severity_actions[Severity.MAJOR].trigger()
    panel.type_actions["missing_unit"].trigger()
    panel.type_actions["penetration"].trigger()            # toggled off again
    assert panel.severity_actions[Severity.MAJOR].isChecked()
    assert not panel.severity_actions[Severity.MINOR].isChecked()
    assert panel.agree_action.text() == "Save correction: major · missing unit"
    panel.agree_action.trigger()
    assert panel.sent == [Confirm(agree=False, severity=Severity.MAJOR,
                                  defect_types=("missing_unit",))]
    _storable(panel.sent[0])
    # Sent: nothing can be pressed until the workflow answers (one press, one Confirm).
    assert not panel.clear_action.isEnabled() and not panel.agree_action.isEnabled()
    panel.agree_action.trigger()
    assert len(panel.sent) == 1
    panel.resume()                                         # refused: choices kept, live again
    assert panel.severity is Severity.MAJOR and panel.agree_action.isEnabled()
    panel.clear_action.trigger()
    assert panel.severity is None and panel.types == ()


def test_agreement_is_judged_against_the_verdict(panel):
    panel.start("DAMAGED", ("deformation",))
    panel.severity_actions[Severity.MAJOR].trigger()
    panel.type_actions["deformation"].trigger()
    assert panel.build_confirm() == Confirm(agree=True, severity=Severity.MAJOR,
                                            defect_types=("deformation",))
    panel.type_actions["spillage"].trigger()
    assert panel.build_confirm().agree is False
    assert panel.type_buttons["deformation"].property("marked") is True   # likely: marked
    assert not panel.type_buttons["spillage"].property("marked")


def test_every_choice_has_its_own_key(panel):
    keys = [key for action in panel.window_actions() for key in
            (sequence.toString() for sequence in action.shortcuts())]
    assert len(keys) == len(set(keys))
    assert set(SEVERITY_KEYS.values()) | set(TYPE_KEYS.values()) <= set(keys)
    panel.start("OK", ())
    panel.stop()
    assert not any(action.isEnabled() for action in panel.window_actions())
