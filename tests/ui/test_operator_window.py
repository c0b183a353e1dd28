"""The real operator window over a real station, driven by keys as an associate would.

The station (tests/ui/conftest.py) runs pypylon's emulated camera over the synthetic
station frames, the lighting and scanner simulators on pseudo-terminals, the bundled
models and a capture store in a temporary folder. The window gets only the workflow's
``submit`` and ``subscribe`` (``SurfaceOnly``); the tests look at the station and its
store to check what the window made happen.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PyQt6.QtCore import Qt, QTimer

from station_app.config import load_config
from station_app.workflow import (Back, CaptureSaved, CommandIgnored, Confirm,
                                  ConfirmationSaved, Fault, ItemRejected, SignOut, State,
                                  StateChanged, VerdictReady)
from station_app.workflow.commands import Severity
from tests.ui.conftest import EventLog, ScriptedCore, SurfaceOnly
from ui.app import demo_scanner, station_info
from ui.image_view import HEATMAP_LAYER
from ui.operator_window import OperatorWindow

WAIT_MS = 30_000


@pytest.fixture
def events(station):
    log = EventLog()
    unsubscribe = station.workflow.subscribe(log)
    yield log
    unsubscribe()


@pytest.fixture
def window(qtbot, station):
    shown = OperatorWindow(SurfaceOnly(station.workflow), station.config.ui,
                           station_info(station), scan_demo_item=demo_scanner(station),
                           tick_interval_ms=0)
    qtbot.addWidget(shown)
    shown.resize(1600, 900)
    shown.show()
    qtbot.waitExposed(shown)
    yield shown
    # Leave the shared station as the next test expects it: lights answering, signed out.
    station.lighting_simulator.pty.resume()
    shown.close()
    workflow = station.workflow
    assert workflow.wait_until_idle(30)
    for command in (Back(), Back(), SignOut()):
        workflow.submit(command)
    assert workflow.wait_until_idle(30) and workflow.state is State.SIGNED_OUT


def _sign_in_and_scan(qtbot, window: OperatorWindow, badge: str = "badge-7") -> None:
    assert window.pages.currentWidget() is window.sign_in_page
    qtbot.keyClicks(window.badge_entry, badge)
    qtbot.keyClick(window.badge_entry, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.state is State.SIGNED_IN, timeout=WAIT_MS)
    assert window.pages.currentWidget() is window.main_page
    assert badge in window.operator_label.text()
    qtbot.keyClick(window, Qt.Key.Key_N)                      # the simulated scanner
    qtbot.waitUntil(lambda: window.state is State.WAITING_FOR_ITEM, timeout=WAIT_MS)
    assert window.trigger_action.isEnabled()


def test_a_whole_inspection_by_keyboard(qtbot, window, station, events):
    _sign_in_and_scan(qtbot, window)
    code = window.item_label.text().removeprefix("Item ")
    assert code.isdigit() and len(code) == 13

    qtbot.keyClick(window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.banner.verdict is not None, timeout=WAIT_MS)
    verdict = events.first(lambda e: isinstance(e, VerdictReady))
    assert window.banner.verdict == verdict.label in ("OK", "REVIEW", "DAMAGED")
    assert window.banner.title.text() == verdict.label
    assert window.banner.tone == verdict.label.lower()

    # The tray image is the verdict's own array (no copy), the heatmap lies over it.
    tray = window.tray_view.image
    assert tray is not None and tray.array is verdict.tray_image
    assert int(tray.qimage.constBits()) == verdict.tray_image.ctypes.data
    heatmap = window.tray_view.layer(HEATMAP_LAYER)
    assert heatmap is not None and heatmap.visible
    assert heatmap.opacity == station.config.ui.heatmap_opacity
    crop = window.crop_view.image
    assert crop is not None and crop.array is verdict.item_crop
    assert crop.width == crop.height > 64
    assert window.reference_view.image is None                # a new item: no reference
    assert "No reference" in window.reference_view.placeholder
    qtbot.waitUntil(lambda: len(window.latencies_ms) == 1, timeout=WAIT_MS)
    assert window.status_bar.latency.text() == f"Last: {window.latencies_ms[0]:.0f} ms"
    assert window.status_bar.part_text("camera") == "Camera: frame captured"
    assert window.status_bar.part_text("lights") == "Lights: answering"

    qtbot.keyClick(window, Qt.Key.Key_H)                       # heatmap off, on
    assert not heatmap.visible and not window.heatmap_action.isChecked()
    qtbot.keyClick(window, Qt.Key.Key_H)
    assert heatmap.visible

    qtbot.waitUntil(lambda: window.state is State.VERDICT_SHOWN, timeout=WAIT_MS)
    qtbot.keyClick(window, Qt.Key.Key_3)                       # major ...
    qtbot.keyClick(window, Qt.Key.Key_P)                       # ... penetration ...
    qtbot.keyClick(window, Qt.Key.Key_L)                       # ... and spillage
    panel = window.confirm_panel
    assert panel.severity is Severity.MAJOR and panel.types == ("penetration", "spillage")
    assert panel.severity_buttons[Severity.MAJOR].isChecked()
    assert panel.type_buttons["spillage"].isChecked()
    expected_agree = (verdict.label == "DAMAGED"
                      and set(verdict.likely_types) == {"penetration", "spillage"})
    assert window.confirm_panel.agree_action.text().startswith(
        "Agree" if expected_agree else "Save correction")
    qtbot.keyClick(window, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.shift_count == 1 and window.state is State.SIGNED_IN,
                    timeout=WAIT_MS)
    assert window.count_label.text() == "Confirmed this shift: 1"
    assert window.tray_view.image is None                      # ready for the next item

    record = station.store.get(verdict.capture_id)
    assert record is not None and record.item_identifier == code
    confirmation = record.confirmation
    assert confirmation is not None and confirmation.confirmed_by == "badge-7"
    assert (confirmation.severity, confirmation.defect_types, confirmation.agrees) == \
        ("major", ("penetration", "spillage"), expected_agree)

    qtbot.keyClick(window, Qt.Key.Key_F10)                     # sign out: count resets
    qtbot.waitUntil(lambda: window.state is State.SIGNED_OUT, timeout=WAIT_MS)
    assert window.pages.currentWidget() is window.sign_in_page and window.shift_count == 0


def test_a_second_trigger_while_processing_is_ignored(qtbot, window, station, events):
    _sign_in_and_scan(qtbot, window)
    enabled_while_busy: list[bool] = []
    qtbot.keyClick(window, Qt.Key.Key_Space)
    qtbot.keyClick(window, Qt.Key.Key_Space)                   # before the workflow answered
    deadline = time.monotonic() + WAIT_MS / 1000
    while window.banner.verdict is None and time.monotonic() < deadline:
        if window.state in (State.CAPTURING, State.PROCESSING):
            enabled_while_busy.append(window.trigger_action.isEnabled())
            qtbot.keyClick(window, Qt.Key.Key_Space)           # pressed again while busy
            qtbot.keyClick(window, Qt.Key.Key_F12)             # and the pedal
        qtbot.wait(5)
    assert window.banner.verdict is not None
    assert station.workflow.wait_until_idle(30)
    assert enabled_while_busy and not any(enabled_while_busy)
    assert len(events.of(CaptureSaved)) == 1 and len(events.of(VerdictReady)) == 1
    # The workflow is idle, but its StateChanged (sent just after VerdictReady) may still
    # be in the Qt event queue.
    qtbot.waitUntil(lambda: window.state is State.VERDICT_SHOWN, timeout=5000)


def test_the_ui_thread_keeps_running_while_the_station_works(qtbot, window, events):
    _sign_in_and_scan(qtbot, window)
    ticks: list[float] = []
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(5)
    try:
        started = time.perf_counter()
        qtbot.keyClick(window, Qt.Key.Key_Space)
        qtbot.waitUntil(lambda: len(window.latencies_ms) == 1, timeout=WAIT_MS)
        on_screen = started + window.latencies_ms[0] / 1000.0
    finally:
        timer.stop()
    during = [started] + [t for t in ticks if started <= t <= on_screen] + [on_screen]
    gaps_ms = np.diff(during) * 1000.0
    latency_ms = window.latencies_ms[0]
    # Structural, not a speed target: if the window waited for the station, one gap
    # would span the whole capture and processing.
    assert len(during) > 10, (len(during), latency_ms)
    assert gaps_ms.max() < 0.5 * latency_ms, (gaps_ms.max(), latency_ms)


def test_lights_fault_then_retry_completes_the_inspection(qtbot, window, station, events):
    _sign_in_and_scan(qtbot, window)
    station.lighting_simulator.pty.go_silent()
    qtbot.keyClick(window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.state is State.FAULT, timeout=WAIT_MS)
    panel = window.fault_panel
    assert window.side.currentWidget() is panel
    assert panel.audience.text() == "Call a technician"
    assert panel.message.text().startswith("Lights not answering")
    assert panel.capture.text() == "Nothing was captured."
    assert window.banner.tone == "fault"
    assert window.status_bar.part_text("lights") == "Lights: failed"
    assert "Lights not answering" in window.status_bar.indicators["lights"].toolTip()
    assert window.retry_action.isEnabled() and not window.trigger_action.isEnabled()
    assert not events.of(CaptureSaved)

    station.lighting_simulator.pty.resume()
    qtbot.keyClick(window, Qt.Key.Key_R)
    qtbot.waitUntil(lambda: window.state is State.VERDICT_SHOWN, timeout=WAIT_MS)
    assert window.banner.verdict in ("OK", "REVIEW", "DAMAGED")
    assert window.side.currentWidget() is window.confirm_panel
    assert window.status_bar.part_text("lights") == "Lights: answering"
    assert len(events.of(CaptureSaved)) == 1

    qtbot.keyClick(window, Qt.Key.Key_1)                       # none: no damage
    qtbot.keyClick(window, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(events.of(ConfirmationSaved)), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.shift_count == 1, timeout=WAIT_MS)


def test_escape_leaves_a_verdict_unconfirmed(qtbot, window, station, events):
    _sign_in_and_scan(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.state is State.VERDICT_SHOWN, timeout=WAIT_MS)
    capture_id = events.of(VerdictReady)[0].capture_id
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: window.state is State.WAITING_FOR_ITEM, timeout=WAIT_MS)
    assert not window.confirm_panel.agree_action.isEnabled()
    assert window.trigger_action.isEnabled() and window.shift_count == 0
    assert station.store.get(capture_id).confirmation is None


@dataclass(frozen=True)
class CoreConnection:
    """Shaped like the socket client's connection event."""

    connected: bool
    message: str = ""


@dataclass(frozen=True)
class SomethingNew:
    """An event type this window has never heard of."""

    value: int


def _changed(old: State, new: State, message: str = "", item: str | None = "4006381333931"):
    return StateChanged(old, new, message, item)


def test_scripted_core_rejection_connection_loss_and_unknown_events(qtbot):
    """Over any workflow-like client (here one the test scripts), from plain events only."""
    core = ScriptedCore()
    window = OperatorWindow(core, load_config(None).ui, tick_interval_ms=0)
    qtbot.addWidget(window)
    window.resize(1600, 900)
    window.show()
    qtbot.keyClicks(window.badge_entry, "badge-5")
    qtbot.keyClick(window.badge_entry, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.state is State.SIGNED_IN)
    qtbot.keyClicks(window.item_entry, "4006381333931")
    qtbot.keyClick(window.item_entry, Qt.Key.Key_Return)
    assert type(core.commands[-1]).__name__ == "ItemTyped"
    core.send(_changed(State.SIGNED_IN, State.ITEM_IDENTIFIED),
              _changed(State.ITEM_IDENTIFIED, State.WAITING_FOR_ITEM, "Place it."))
    qtbot.waitUntil(lambda: window.trigger_action.isEnabled())
    assert window.item_label.text() == "Item 4006381333931"

    qtbot.keyClick(window, Qt.Key.Key_Space)
    qtbot.keyClick(window, Qt.Key.Key_Space)                    # dropped: one trigger sent
    assert [type(c).__name__ for c in core.commands].count("Trigger") == 1
    message = "No item in the tray: place the item inside the tray."
    core.send(_changed(State.WAITING_FOR_ITEM, State.CAPTURING),
              CaptureSaved("c-1", "4006381333931"),
              _changed(State.CAPTURING, State.PROCESSING),
              ItemRejected("c-1", (("no_item", message),), message),
              _changed(State.PROCESSING, State.WAITING_FOR_ITEM, message))
    qtbot.waitUntil(lambda: window.banner.title.text() == "Try again")
    assert window.banner.tone == "attention" and window.banner.detail.text() == message
    assert window.trigger_action.isEnabled()

    core.send(SomethingNew(3))                                  # logged, nothing breaks
    core.send(CoreConnection(False, "connection refused"))
    qtbot.waitUntil(lambda: window.banner.title.text() == "Not connected")
    assert not window.trigger_action.isEnabled()
    assert window.status_bar.part_text("core") == "Core: disconnected"
    core.send(CoreConnection(True),                             # reconnected: a snapshot
              _changed(State.WAITING_FOR_ITEM, State.WAITING_FOR_ITEM, "Place it."))
    qtbot.waitUntil(lambda: window.trigger_action.isEnabled())
    assert window.status_bar.part_text("core") == "Core: connected"

    qtbot.keyClick(window, Qt.Key.Key_F5)
    crop = np.full((96, 96, 3), 200, np.uint8)
    reference = np.full((80, 80, 3), 90, np.uint8)
    verdict = VerdictReady("c-2", "DAMAGED", 0.93, ("deformation",), "high score",
                           np.zeros((16, 16), np.float32), np.zeros((64, 64, 3), np.uint8),
                           {"grab": 40.0}, item_crop=crop, reference_crop=reference)
    core.send(_changed(State.WAITING_FOR_ITEM, State.CAPTURING),
              _changed(State.CAPTURING, State.PROCESSING), verdict,
              _changed(State.PROCESSING, State.VERDICT_SHOWN, "DAMAGED: confirm."))
    qtbot.waitUntil(lambda: window.state is State.VERDICT_SHOWN)
    assert window.banner.title.text() == "DAMAGED"
    assert window.banner.detail.text() == "Likely: deformation"
    assert window.reference_view.image.array is reference
    assert window.crop_view.image.array is crop
    qtbot.keyClick(window, Qt.Key.Key_Return)
    assert core.commands[-1] == Confirm(agree=True, severity=Severity.MINOR,
                                        defect_types=("deformation",))

    core.send(_changed(State.VERDICT_SHOWN, State.CONFIRMED),
              Fault("storage", "Could not store the confirmation: disk full.", "associate",
                    recoverable=False, capture_id="c-2"),
              _changed(State.CONFIRMED, State.FAULT, "Could not store the confirmation."))
    qtbot.waitUntil(lambda: window.state is State.FAULT)
    assert window.fault_panel.audience.text() == "Please check"
    assert "cannot be retried" in window.fault_panel.kind.text()
    assert window.fault_panel.capture.text() == "Frame kept as capture c-2."
    assert not window.retry_action.isEnabled() and window.back_action.isEnabled()
    assert window.status_bar.part_text("storage") == "Storage: failed"
    window.close()
    assert core.listeners == []


def test_the_window_over_the_station_core_socket(qtbot, station, events):
    """``station-app ui``: the same window over the real socket client and server."""
    from station_app.service.client import WorkflowClient
    from station_app.service.server import WorkflowServer

    folder = Path(tempfile.mkdtemp(prefix="ui-core-", dir="/tmp"))   # short socket path
    server = WorkflowServer(station.workflow, folder / "core.sock").start()
    client = WorkflowClient(folder / "core.sock", name="operator window test")
    window = OperatorWindow(client, station.config.ui, tick_interval_ms=0)
    qtbot.addWidget(window)
    window.resize(1600, 900)
    window.show()
    try:
        qtbot.waitUntil(lambda: window.status_bar.part_text("core") == "Core: connected",
                        timeout=WAIT_MS)
        qtbot.keyClicks(window.badge_entry, "badge-11")
        qtbot.keyClick(window.badge_entry, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: window.state is State.SIGNED_IN, timeout=WAIT_MS)
        station.scanner_simulator.scan("4006381333931")
        qtbot.waitUntil(lambda: window.state is State.WAITING_FOR_ITEM, timeout=WAIT_MS)
        qtbot.keyClick(window, Qt.Key.Key_Space)
        qtbot.waitUntil(lambda: window.state is State.VERDICT_SHOWN, timeout=WAIT_MS)
        verdict = events.of(VerdictReady)[0]
        shown = window.tray_view.image.array                 # came over the socket
        assert shown.shape == verdict.tray_image.shape
        np.testing.assert_array_equal(shown, verdict.tray_image)
        assert window.crop_view.image is not None
        if window.banner.verdict == "REVIEW":
            qtbot.keyClick(window, Qt.Key.Key_2)
        qtbot.keyClick(window, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: window.shift_count == 1, timeout=WAIT_MS)
        assert station.store.get(verdict.capture_id).confirmation.confirmed_by == "badge-11"

        # A window started mid-shift (the kiosk UI restarted) shows who is signed in and
        # their count, from the core.
        client2 = WorkflowClient(folder / "core.sock", name="restarted window")
        restarted = OperatorWindow(client2, station.config.ui, tick_interval_ms=0)
        qtbot.addWidget(restarted)
        try:
            qtbot.waitUntil(lambda: restarted.state is State.SIGNED_IN, timeout=WAIT_MS)
            assert restarted.shift_count == 1
            assert "badge-11" in restarted.operator_label.text()
        finally:
            restarted.close()
            client2.close()

        server.close()                                       # the core goes away ...
        qtbot.waitUntil(lambda: window.banner.title.text() == "Not connected",
                        timeout=WAIT_MS)
        assert window.status_bar.part_text("core") == "Core: disconnected"
        assert not window.item_entry.isEnabled()
        server = WorkflowServer(station.workflow, folder / "core.sock").start()   # ... back
        qtbot.waitUntil(lambda: window.status_bar.part_text("core") == "Core: connected",
                        timeout=WAIT_MS)
        qtbot.waitUntil(lambda: window.item_entry.isEnabled(), timeout=WAIT_MS)
        qtbot.waitUntil(lambda: window.state is State.SIGNED_IN
                        and window.banner.title.text() == "Ready", timeout=WAIT_MS)
    finally:
        window.close()
        client.close()
        server.close()


def _scripted_window_at_verdict(qtbot) -> tuple[ScriptedCore, OperatorWindow]:
    core = ScriptedCore()
    window = OperatorWindow(core, load_config(None).ui, tick_interval_ms=0)
    qtbot.addWidget(window)
    window.resize(1600, 900)
    window.show()
    qtbot.keyClicks(window.badge_entry, "badge-8")
    qtbot.keyClick(window.badge_entry, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.state is State.SIGNED_IN)
    verdict = VerdictReady("c-3", "OK", 0.1, (), "low score", np.zeros((16, 16), np.float32),
                           np.zeros((64, 64, 3), np.uint8), {"grab": 40.0})
    core.send(_changed(State.SIGNED_IN, State.ITEM_IDENTIFIED),
              _changed(State.ITEM_IDENTIFIED, State.WAITING_FOR_ITEM),
              _changed(State.WAITING_FOR_ITEM, State.CAPTURING),
              _changed(State.CAPTURING, State.PROCESSING), verdict,
              _changed(State.PROCESSING, State.VERDICT_SHOWN, "OK: confirm."))
    qtbot.waitUntil(lambda: window.state is State.VERDICT_SHOWN)
    return core, window


def _sent(core: ScriptedCore, name: str) -> int:
    return [type(c).__name__ for c in core.commands].count(name)


def test_no_action_repeats_while_its_key_is_held(qtbot):
    _, window = _scripted_window_at_verdict(qtbot)
    actions = window.actions()
    assert window.back_action in actions and window.confirm_panel.agree_action in actions
    assert [a.text() for a in actions if a.autoRepeat()] == []
    window.close()


def test_a_double_escape_sends_one_back_until_the_workflow_answers(qtbot):
    """Two Backs would go VERDICT_SHOWN -> WAITING_FOR_ITEM -> SIGNED_IN: item code lost."""
    core, window = _scripted_window_at_verdict(qtbot)
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert _sent(core, "Back") == 1 and not window.back_action.isEnabled()
    core.send(CommandIgnored("Back", State.VERDICT_SHOWN, "busy"))    # refused: press again
    qtbot.waitUntil(lambda: window.back_action.isEnabled())
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert _sent(core, "Back") == 2
    core.send(_changed(State.VERDICT_SHOWN, State.WAITING_FOR_ITEM))  # answered: armed again
    qtbot.waitUntil(lambda: window.state is State.WAITING_FOR_ITEM)
    assert window.back_action.isEnabled()
    window.close()


def test_a_double_enter_sends_one_confirm_until_the_workflow_answers(qtbot):
    core, window = _scripted_window_at_verdict(qtbot)
    panel = window.confirm_panel
    qtbot.keyClick(window, Qt.Key.Key_1)
    qtbot.keyClick(window, Qt.Key.Key_Return)
    qtbot.keyClick(window, Qt.Key.Key_Return)
    assert _sent(core, "Confirm") == 1 and not panel.agree_action.isEnabled()
    assert not panel.severity_actions[Severity.MAJOR].isEnabled()
    core.send(CommandIgnored("Confirm", State.VERDICT_SHOWN, "not connected"))
    qtbot.waitUntil(lambda: panel.agree_action.isEnabled())
    assert panel.severity is Severity.NONE                # the choice was kept
    qtbot.keyClick(window, Qt.Key.Key_Return)
    qtbot.keyClick(window, Qt.Key.Key_Enter)
    assert core.commands[-1] == Confirm(agree=True, severity=Severity.NONE)
    assert _sent(core, "Confirm") == 2
    window.close()


def test_a_double_retry_sends_one_retry(qtbot):
    core, window = _scripted_window_at_verdict(qtbot)
    core.send(_changed(State.VERDICT_SHOWN, State.CONFIRMED),
              Fault("storage", "Could not store the confirmation.", "associate",
                    recoverable=True, capture_id="c-3"),
              _changed(State.CONFIRMED, State.FAULT, "Could not store the confirmation."))
    qtbot.waitUntil(lambda: window.retry_action.isEnabled())
    qtbot.keyClick(window, Qt.Key.Key_R)
    qtbot.keyClick(window, Qt.Key.Key_R)
    assert _sent(core, "Retry") == 1 and not window.retry_action.isEnabled()
    core.send(CommandIgnored("Retry", State.FAULT, "busy"))
    qtbot.waitUntil(lambda: window.retry_action.isEnabled())
    window.close()
