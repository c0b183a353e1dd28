"""The operator window: what an associate uses all shift, by touch or by keyboard.

It drives the inspection workflow only through commands (``submit``) and shows only what
its events say (``subscribe``, through :class:`ui.qt_bridge.WorkflowBridge` into the UI
thread), so it runs the same over the in-process workflow (the demo) and over the
station core's socket. It never waits: every command returns at once, slow work runs in
the workflow, and while the station is busy the trigger is disabled, so a second press is
dropped, not queued (the workflow ignores one too).

Every action is a window shortcut shown on its button: Space/F5 (and the pedal key)
capture, Enter agrees or saves the correction, 1/2/3 severity, a letter per defect type,
Backspace clears the choice, H heatmap, Esc back, R retry, F3 item code, F10 sign out,
N scans the next demo item (demo only).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence
from PyQt6.QtWidgets import (QFrame, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QMainWindow,
                             QProgressBar, QSizePolicy, QStackedWidget, QVBoxLayout, QWidget)

from engines.heatmap import heatmap_layer
from station_app.config import UiSettings
from station_app.workflow import (Back, CaptureSaved, CommandIgnored, ConfirmationSaved, Fault,
                                  ItemRejected, ItemTyped, Retry, SignIn, SignOut, State,
                                  StateChanged, Tick, Trigger, TriggerSource, VerdictReady)
from ui.action_button import ActionButton
from ui.confirm_panel import ConfirmPanel
from ui.fault_panel import FaultPanel
from ui.image_view import HEATMAP_LAYER, ImageView
from ui.qt_bridge import WorkflowBridge, WorkflowSurface
from ui.status_bar import StatusBar
from ui.style import style_sheet
from ui.verdict_banner import VerdictBanner

log = logging.getLogger("ui.operator_window")

TRIGGER_KEYS = ("Space", "F5")
BACK_KEY, RETRY_KEY, HEATMAP_KEY = "Esc", "R", "H"
ITEM_KEY, SIGN_OUT_KEY, DEMO_SCAN_KEY = "F3", "F10", "N"

# States in which each action makes sense; the workflow decides anyway.
_TRIGGER_STATES = {State.WAITING_FOR_ITEM}
_BACK_STATES = {State.WAITING_FOR_ITEM, State.VERDICT_SHOWN, State.FAULT}
_SIGN_OUT_STATES = {State.SIGNED_IN, State.WAITING_FOR_ITEM, State.VERDICT_SHOWN, State.FAULT}
_ITEM_STATES = {State.SIGNED_IN, State.WAITING_FOR_ITEM}


@dataclass(frozen=True)
class StationInfo:
    """Plain facts about the station for the screen (not read from the station itself)."""

    station_id: str = "station"
    station_name: str = "Damage inspection station"
    runtime: str = ""
    model_versions: dict[str, str] = field(default_factory=dict)
    profile_version: str = ""


class OperatorWindow(QMainWindow):
    """``workflow``: anything with ``submit(command)`` and ``subscribe(listener)``.

    ``scan_demo_item`` (demo only) simulates a barcode scan and returns the code.
    ``tick_interval_ms`` sends the workflow a ``Tick`` that often while someone is signed
    in, so its timeouts run (0: the core ticks itself, as the service does).
    ``verdict_on_screen`` fires with the trigger-to-verdict-painted time in ms;
    ``closed`` when the window has closed (and unsubscribed)."""

    verdict_on_screen = pyqtSignal(float)
    closed = pyqtSignal()

    def __init__(self, workflow: WorkflowSurface, settings: UiSettings,
                 info: StationInfo = StationInfo(), *,
                 scan_demo_item: Callable[[], str] | None = None,
                 tick_interval_ms: int = 1000, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.info = info
        self._scan_demo_item = scan_demo_item
        self._state = State.SIGNED_OUT
        self._shift_count = 0
        self._operator = ""
        self._badge_sent = ""
        self._item = ""
        self._verdict: VerdictReady | None = None
        self._fault: Fault | None = None
        self._rejected_message = ""
        self._connected = True
        self._trigger_sent = False
        self._back_sent = False        # one-shot guards like the trigger's: cleared by the
        self._retry_sent = False       # next StateChanged or a CommandIgnored for them
        self._triggered_at: float | None = None
        self._awaiting_paint: set[str] = set()
        self.latencies_ms: list[float] = []

        scale = settings.font_scale
        self._button_height = round((76 if settings.touch else 64) * scale)
        self.setWindowTitle(f"{info.station_name} — {info.station_id}")
        font = self.font()
        font.setPixelSize(round(18 * scale))
        self.setFont(font)
        self.setStyleSheet(style_sheet(scale))
        self._build_actions()
        self.pages = QStackedWidget()
        self.sign_in_page = self._build_sign_in_page()
        self.main_page = self._build_main_page()
        self.pages.addWidget(self.sign_in_page)
        self.pages.addWidget(self.main_page)
        self.status_bar = StatusBar(info.station_id, info.runtime or "runtime unknown")
        central = QWidget()
        central.setObjectName("central")
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.pages, 1)
        layout.addWidget(self.status_bar)
        self.setCentralWidget(central)

        self.bridge = WorkflowBridge(workflow, self)
        self.bridge.workflow_event.connect(self.on_event)
        self.banner.painted.connect(lambda at: self._painted("banner", at))
        self.tray_view.painted.connect(lambda at: self._painted("tray", at))
        self._ticker = QTimer(self)
        self._ticker.timeout.connect(self._tick)
        if tick_interval_ms > 0:
            self._ticker.start(tick_interval_ms)
        self._apply_state(State.SIGNED_OUT, "Scan your badge to start.")

    # -- building ----------------------------------------------------------------------------

    def _action(self, text: str, keys: tuple[str, ...], slot: Callable[..., Any],
                checkable: bool = False) -> QAction:
        action = QAction(text, self)
        action.setShortcuts([QKeySequence(key) for key in keys if key])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setCheckable(checkable)
        action.setAutoRepeat(False)    # a held key is one press, not a stream of commands
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        pedal = self.settings.pedal_key
        self.trigger_action = self._action("Capture", TRIGGER_KEYS,
                                           lambda: self.trigger(TriggerSource.BUTTON))
        self.pedal_action = self._action("Capture (pedal)", (pedal,),
                                         lambda: self.trigger(TriggerSource.PEDAL))
        self.back_action = self._action("Back", (BACK_KEY,), self.back)
        self.retry_action = self._action("Retry", (RETRY_KEY,), self.retry)
        self.heatmap_action = self._action("Heatmap", (HEATMAP_KEY,), self._show_heatmap,
                                           checkable=True)
        self.heatmap_action.setChecked(self.settings.show_heatmap)
        self.sign_out_action = self._action("Sign out", (SIGN_OUT_KEY,),
                                            lambda: self._send(SignOut()))
        self.item_action = self._action("Type item code", (ITEM_KEY,), self._focus_item_entry)
        self.demo_scan_action = self._action("Scan next demo item", (DEMO_SCAN_KEY,),
                                             self.scan_demo_item)
        self.demo_scan_action.setVisible(self._scan_demo_item is not None)

    def _build_sign_in_page(self) -> QWidget:
        page = QWidget()
        page.setObjectName("signInPage")
        title = QLabel(self.info.station_name)
        title.setObjectName("signInTitle")
        subtitle = QLabel(f"Station {self.info.station_id}")
        subtitle.setObjectName("signInSubtitle")
        prompt = QLabel("Scan your badge, or type it and press Enter")
        prompt.setObjectName("signInPrompt")
        self.badge_entry = QLineEdit()
        self.badge_entry.setObjectName("badgeEntry")
        self.badge_entry.setPlaceholderText("Badge")
        self.badge_entry.setMaxLength(64)
        self.badge_entry.setFixedHeight(round(self._button_height * 1.1))
        self.badge_entry.returnPressed.connect(self.sign_in)
        self.sign_in_message = QLabel()
        self.sign_in_message.setObjectName("signInMessage")
        self.sign_in_message.setWordWrap(True)
        box = QVBoxLayout()
        box.setSpacing(18)
        for widget in (title, subtitle, prompt, self.badge_entry, self.sign_in_message):
            widget.setMaximumWidth(round(720 * self.settings.font_scale))
            box.addWidget(widget, 0, Qt.AlignmentFlag.AlignHCenter)
            if isinstance(widget, QLabel):
                widget.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.badge_entry.setMinimumWidth(round(520 * self.settings.font_scale))
        layout = QVBoxLayout(page)
        layout.addStretch(2)
        layout.addLayout(box)
        layout.addStretch(3)
        return page

    def _build_main_page(self) -> QWidget:
        scale = self.settings.font_scale
        page = QWidget()
        page.setObjectName("mainPage")
        height = self._button_height

        # Header: who, what, how many.
        self.station_label = QLabel(f"{self.info.station_name}  ·  {self.info.station_id}")
        self.station_label.setObjectName("headerStation")
        self.item_label = QLabel("No item")
        self.item_label.setObjectName("headerItem")
        self.operator_label = QLabel()
        self.operator_label.setObjectName("headerOperator")
        self.count_label = QLabel()
        self.count_label.setObjectName("headerCount")
        header = QHBoxLayout()
        header.setSpacing(28)
        header.addWidget(self.station_label)
        header.addStretch(1)
        header.addWidget(self.item_label)
        header.addStretch(1)
        header.addWidget(self.operator_label)
        header.addWidget(self.count_label)

        self.banner = VerdictBanner(scale)

        # Left: the tray with its heatmap.
        self.tray_view = ImageView("The tray picture appears here after the capture.")
        heatmap_button = ActionButton(self.heatmap_action, HEATMAP_KEY, role="toggle",
                                      height=round(height * 0.8))
        heatmap_button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        heatmap_button.setFixedWidth(round(190 * scale))
        tray_caption = QLabel("Tray")
        tray_caption.setObjectName("caption")
        tray_header = QHBoxLayout()
        tray_header.addWidget(tray_caption)
        tray_header.addStretch(1)
        tray_header.addWidget(heatmap_button)
        tray_box = QVBoxLayout()
        tray_box.setSpacing(6)
        tray_box.addLayout(tray_header)
        tray_box.addWidget(self.tray_view, 1)

        # Right: item beside its reference, then guide / confirm / fault.
        self.crop_view = ImageView("Item")
        self.reference_view = ImageView("No reference")
        crops = QGridLayout()
        crops.setHorizontalSpacing(12)
        crops.setVerticalSpacing(4)
        for column, (caption, view) in enumerate((("Item", self.crop_view),
                                                  ("Reference", self.reference_view))):
            label = QLabel(caption)
            label.setObjectName("caption")
            crops.addWidget(label, 0, column)
            crops.addWidget(view, 1, column)
            view.setMinimumSize(round(150 * scale), round(150 * scale))
        crops.setRowStretch(1, 1)

        self.guide = QLabel()
        self.guide.setObjectName("guide")
        self.guide.setWordWrap(True)
        self.guide.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setTextVisible(False)
        self.busy.setFixedHeight(round(10 * scale))
        self.busy.setVisible(False)
        guide_page = QFrame()
        guide_page.setObjectName("guidePage")
        guide_layout = QVBoxLayout(guide_page)
        guide_layout.setContentsMargins(22, 18, 22, 18)
        guide_layout.addWidget(self.guide, 1)
        guide_layout.addWidget(self.busy)
        self.confirm_panel = ConfirmPanel(scale, height)
        self.confirm_panel.confirm_requested.connect(self._send)
        for action in self.confirm_panel.window_actions():
            self.addAction(action)
        self.fault_panel = FaultPanel(self.retry_action, self.back_action, scale, height)
        self.side = QStackedWidget()
        for widget in (guide_page, self.confirm_panel, self.fault_panel):
            self.side.addWidget(widget)
        self.guide_page = guide_page

        right = QVBoxLayout()
        right.setSpacing(14)
        right.addLayout(crops, 5)
        right.addWidget(self.side, 6)
        body = QHBoxLayout()
        body.setSpacing(20)
        body.addLayout(tray_box, 11)
        body.addLayout(right, 10)

        # Bottom: item code, capture, back, demo scan, sign out.
        self.item_entry = QLineEdit()
        self.item_entry.setObjectName("itemEntry")
        self.item_entry.setPlaceholderText(f"Item code ({ITEM_KEY}), Enter")
        self.item_entry.setMaxLength(128)
        self.item_entry.setFixedHeight(height)
        self.item_entry.setMinimumWidth(round(300 * scale))
        self.item_entry.returnPressed.connect(self.type_item)
        trigger_keys = " · ".join(TRIGGER_KEYS)
        if self.settings.pedal_key:
            trigger_keys += f" · pedal {self.settings.pedal_key}"
        self.trigger_button = ActionButton(self.trigger_action, trigger_keys, role="primary",
                                           height=height)
        self.trigger_button.setMinimumWidth(round(300 * scale))
        buttons = [self.item_entry, self.trigger_button,
                   ActionButton(self.back_action, BACK_KEY, height=height)]
        if self._scan_demo_item is not None:
            buttons.append(ActionButton(self.demo_scan_action, DEMO_SCAN_KEY, height=height))
        buttons.append(ActionButton(self.sign_out_action, SIGN_OUT_KEY, height=height))
        bottom = QHBoxLayout()
        bottom.setSpacing(12)
        for index, widget in enumerate(buttons):
            bottom.addWidget(widget, 3 if widget is self.trigger_button else 2)

        layout = QVBoxLayout(page)
        layout.setContentsMargins(20, 12, 20, 12)
        layout.setSpacing(12)
        layout.addLayout(header)
        layout.addWidget(self.banner)
        layout.addLayout(body, 1)
        layout.addLayout(bottom)
        return page

    # -- commands out ------------------------------------------------------------------------

    def _send(self, command: Any) -> None:
        self.bridge.submit(command)

    def sign_in(self) -> None:
        badge = self.badge_entry.text().strip()
        if not badge:
            return
        self._badge_sent = badge
        self.badge_entry.clear()
        self._send(SignIn(badge))

    def type_item(self) -> None:
        code = self.item_entry.text().strip()
        if not code:
            return
        self.item_entry.clear()
        self.item_entry.clearFocus()
        self._send(ItemTyped(code))

    def trigger(self, source: TriggerSource = TriggerSource.BUTTON) -> None:
        """One press, one trigger: disabled at once until the workflow answers."""
        if self._trigger_sent or self._state not in _TRIGGER_STATES:
            return
        self._trigger_sent = True
        self._triggered_at = time.perf_counter()
        self._update_actions()
        self._send(Trigger(source))

    def back(self) -> None:
        """One press, one Back: a second Esc before the workflow answers would go back a
        second step (VERDICT_SHOWN -> WAITING_FOR_ITEM -> SIGNED_IN, losing the item)."""
        if self._back_sent or self._state not in _BACK_STATES:
            return
        self._back_sent = True
        self._update_actions()
        self._send(Back())

    def retry(self) -> None:
        if self._state is State.FAULT and not self._retry_sent:
            self._retry_sent = True
            self._triggered_at = time.perf_counter()
            self._update_actions()
            self._send(Retry())

    def scan_demo_item(self) -> None:
        if self._scan_demo_item is None or self._state not in _ITEM_STATES:
            return
        code = self._scan_demo_item()
        self.status_bar.show_notice(f"Demo scanner: {code}")

    def _focus_item_entry(self) -> None:
        if self.item_entry.isEnabled():
            self.item_entry.setFocus(Qt.FocusReason.ShortcutFocusReason)
            self.item_entry.selectAll()

    def _show_heatmap(self, visible: bool) -> None:
        self.tray_view.set_layer_visible(HEATMAP_LAYER, visible)

    def _tick(self) -> None:
        if self._state is not State.SIGNED_OUT and self._connected:
            self._send(Tick())

    # -- events in ---------------------------------------------------------------------------

    def on_event(self, event: Any) -> None:
        """One workflow event, in the UI thread, in the order the workflow made them."""
        self.status_bar.observe(event)
        if isinstance(event, StateChanged):
            self._on_state(event)
        elif isinstance(event, VerdictReady):
            self._on_verdict(event)
        elif isinstance(event, ItemRejected):
            self._rejected_message = event.message
            self._triggered_at = None
            self._clear_pictures("No picture: " + event.message)
        elif isinstance(event, Fault):
            self._fault = event
            self._triggered_at = None
            self.fault_panel.show_fault(event.kind, event.message, event.for_whom,
                                        event.recoverable, event.capture_id)
        elif isinstance(event, ConfirmationSaved):
            self._shift_count += 1
            self._update_header()
        elif isinstance(event, CommandIgnored):
            self.status_bar.show_notice(f"{event.command} ignored: {event.reason}")
            if event.command == "Trigger":
                self._trigger_sent = False
            elif event.command == "Back":
                self._back_sent = False
            elif event.command == "Retry":
                self._retry_sent = False
            elif event.command == "Confirm" and self._state is State.VERDICT_SHOWN:
                self.confirm_panel.resume()
            self._update_actions()
            if event.command == "SignIn" and self._state is State.SIGNED_OUT:
                self.sign_in_message.setText(event.reason)
        elif isinstance(event, CaptureSaved):
            pass                                         # the status bar has it
        elif hasattr(event, "connected"):
            self._on_connection(bool(event.connected), str(getattr(event, "message", "")))
        else:
            log.debug("event the operator window does not know: %r", event)

    def _on_connection(self, connected: bool, message: str) -> None:
        self._connected = connected
        if connected:
            self.status_bar.show_notice("Connected to the station core")
            self._update_actions()
            return
        self.pages.setCurrentWidget(self.main_page)
        self.banner.show_state("Not connected", "The station core is not answering; "
                               "this screen reconnects by itself.", "fault", message)
        self._update_actions()

    def _on_state(self, change: StateChanged) -> None:
        old, new = change.old, change.new
        if new is State.SIGNED_IN and old is State.SIGNED_OUT:
            self._operator = self._badge_sent or "associate"
            self._shift_count = 0
        if new is State.SIGNED_OUT:
            self._operator, self._shift_count = "", 0
        elif change.operator:
            # The workflow keeps who is signed in and their count, so a window restarted
            # mid-shift (over the core's socket) shows them again.
            self._operator = change.operator
            self._shift_count = change.confirmed_count
        if new is State.CAPTURING and self._triggered_at is None:
            self._triggered_at = time.perf_counter()     # triggered elsewhere (pedal, auto)
        self._item = change.item_identifier or ""
        self._apply_state(new, change.message, old)

    def _apply_state(self, new: State, message: str, old: State | None = None) -> None:
        self._state = new
        self._trigger_sent = self._back_sent = self._retry_sent = False
        self._update_header()
        if new is State.SIGNED_OUT:
            self.pages.setCurrentWidget(self.sign_in_page)
            self.sign_in_message.setText(message if old is not None else "")
            self.badge_entry.setFocus()
            self._clear_pictures()
            self._verdict = None
        else:
            self.pages.setCurrentWidget(self.main_page)
        self.busy.setVisible(new in (State.CAPTURING, State.PROCESSING))
        if new in (State.SIGNED_IN, State.ITEM_IDENTIFIED):
            self._verdict = None
            self._clear_pictures()
            self.banner.show_state("Ready", message or "Scan the item's barcode.")
            self._show_guide("Scan the item's barcode, or type its code and press Enter.")
        elif new is State.WAITING_FOR_ITEM:
            if old is not State.WAITING_FOR_ITEM and old is not State.PROCESSING:
                self._verdict = None
                self._clear_pictures()
            if old is State.PROCESSING and self._rejected_message:
                self.banner.show_state("Try again", message, "attention")
            else:
                self.banner.show_state("Place item", message or "Place the item, then "
                                       "capture.")
            self._show_guide(f"1. Put item {self._item} in the tray.\n"
                             f"2. Press Capture (Space).")
        elif new is State.CAPTURING:
            self.banner.show_state("Capturing", "Keep the tray still.", "busy")
            self._show_guide("Lights on, one picture, lights off.\nKeep the tray still.")
        elif new is State.PROCESSING:
            self.banner.show_state("Checking", "Checking the item…", "busy")
            self._show_guide("The picture is taken. Leave the item in the tray until the "
                             "verdict shows.")
        elif new is State.VERDICT_SHOWN:
            if self._verdict is not None:
                if self.banner.verdict != self._verdict.label:
                    self._show_verdict(self._verdict)
                self.confirm_panel.start(self._verdict.label, tuple(self._verdict.likely_types))
                self.side.setCurrentWidget(self.confirm_panel)
            else:                      # e.g. a core snapshot without its verdict
                self._show_guide(message)
        elif new is State.CONFIRMED:
            self.confirm_panel.stop()
            self.banner.note.setText("Saving your confirmation…")
            self.banner.note.setVisible(True)
        elif new is State.FAULT:
            fault = self._fault
            title = "Fault"
            detail = message
            if fault is not None:
                detail = message.split(". ")[0].rstrip(".") + "."
                title = {"technician": "Call a technician"}.get(fault.for_whom, "Fault")
            self.banner.show_state(title, detail, "fault")
            self.side.setCurrentWidget(self.fault_panel)
        if new is not State.VERDICT_SHOWN and new is not State.CONFIRMED:
            self.confirm_panel.stop()
        if new is not State.FAULT:
            self._fault = None
        if new is not State.PROCESSING:
            self._rejected_message = ""
        self._update_actions()

    def _on_verdict(self, verdict: VerdictReady) -> None:
        self._verdict = verdict
        self._show_verdict(verdict)
        if self._triggered_at is not None:
            self._awaiting_paint = {"banner", "tray"}

    def _show_verdict(self, verdict: VerdictReady) -> None:
        self.banner.show_verdict(verdict.label, tuple(verdict.likely_types),
                                 verdict.fused_score, verdict.reason)
        self.tray_view.set_image(verdict.tray_image)
        heatmap = verdict.heatmap
        if heatmap is not None and np.size(heatmap):
            self.tray_view.set_layer(HEATMAP_LAYER, heatmap_layer(heatmap),
                                     opacity=self.settings.heatmap_opacity,
                                     visible=self.heatmap_action.isChecked())
        else:
            self.tray_view.set_layer(HEATMAP_LAYER, None)
        self._show_picture(self.crop_view, verdict.item_crop, "No item crop")
        self._show_picture(self.reference_view, verdict.reference_crop,
                           "No reference yet for this item")

    @staticmethod
    def _show_picture(view: ImageView, array: np.ndarray | None, placeholder: str) -> None:
        view.clear(placeholder)
        if array is not None:
            view.set_image(array)

    def _clear_pictures(self, tray_text: str = "") -> None:
        self.tray_view.clear(tray_text or "The tray picture appears here after the capture.")
        self.crop_view.clear("Item")
        self.reference_view.clear("Reference")

    def _show_guide(self, text: str) -> None:
        self.guide.setText(text)
        self.side.setCurrentWidget(self.guide_page)

    def _painted(self, what: str, at: float) -> None:
        if not self._awaiting_paint:
            return
        self._awaiting_paint.discard(what)
        if self._awaiting_paint or self._triggered_at is None:
            return
        latency = (at - self._triggered_at) * 1000.0
        self._triggered_at = None
        self.latencies_ms.append(latency)
        self.status_bar.set_latency(latency)
        self.verdict_on_screen.emit(latency)

    def _update_header(self) -> None:
        self.item_label.setText(f"Item {self._item}" if self._item else "No item")
        self.operator_label.setText(f"Signed in: {self._operator}" if self._operator else "")
        self.count_label.setText(f"Confirmed this shift: {self._shift_count}")

    def _update_actions(self) -> None:
        state, live = self._state, self._connected
        self.trigger_action.setEnabled(live and state in _TRIGGER_STATES
                                       and not self._trigger_sent)
        self.pedal_action.setEnabled(self.trigger_action.isEnabled()
                                     and bool(self.settings.pedal_key))
        self.back_action.setEnabled(live and state in _BACK_STATES and not self._back_sent)
        fault = self._fault
        self.retry_action.setEnabled(live and state is State.FAULT and not self._retry_sent
                                     and (fault is None or fault.recoverable))
        self.sign_out_action.setEnabled(live and state in _SIGN_OUT_STATES)
        entry = live and state in _ITEM_STATES
        self.item_entry.setEnabled(entry)
        self.item_action.setEnabled(entry)
        self.demo_scan_action.setEnabled(entry and self._scan_demo_item is not None)
        self.badge_entry.setEnabled(live and state is State.SIGNED_OUT)
        self.heatmap_action.setEnabled(True)
        if not live:
            self.confirm_panel.stop()

    # -- read-outs (for tests, screenshots and the latency benchmark) --------------------------

    @property
    def state(self) -> State:
        """The state the window is showing (the last ``StateChanged`` it received)."""
        return self._state

    @property
    def shift_count(self) -> int:
        return self._shift_count

    def apply_fullscreen(self) -> None:
        """Full screen when the configuration asks for it, else maximised. The geometry
        is set as well: a kiosk X server often runs no window manager to do it."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        if self.settings.fullscreen:
            if screen is not None:
                self.setGeometry(screen.geometry())
            self.showFullScreen()
        else:
            if screen is not None:
                self.setGeometry(screen.availableGeometry())
            self.showMaximized()
        # Without a window manager nothing activates the window, and Qt's shortcuts (the
        # pedal, Space, Enter...) only reach an active window.
        self.raise_()
        self.activateWindow()

    def closeEvent(self, event: QCloseEvent) -> None:
        self._ticker.stop()
        self.bridge.close()
        super().closeEvent(event)
        self.closed.emit()
