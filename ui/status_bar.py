"""The status bar: camera, lights, models, storage, connection to the core, last latency.

Health is read from the workflow's events only, never from the station's objects, so the
same bar works in process and over the core's socket: a fault of a kind turns that part
red with the fault's message, and the next event proving the part works (a saved capture
for camera and lights, a verdict for the models, a stored confirmation for storage)
turns it green again. A connection event from a socket client (any event with a
``connected`` attribute) shows and updates the core's part.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QWidget

from station_app.workflow import (CaptureSaved, ConfirmationSaved, Fault, ItemRejected,
                                  VerdictReady)

UNKNOWN, OK, FAILED = "unknown", "ok", "failed"
_COLOURS = {UNKNOWN: "#90a4ae", OK: "#43a047", FAILED: "#e53935"}


@dataclass
class PartHealth:
    state: str = UNKNOWN
    text: str = ""          # short, for the bar
    message: str = ""       # full, for the tooltip and tests


@dataclass
class StationHealth:
    """What the events say about each part; plain data (no Qt), updated by :meth:`observe`."""

    parts: dict[str, PartHealth] = field(default_factory=lambda: {
        "camera": PartHealth(), "lights": PartHealth(), "models": PartHealth(),
        "storage": PartHealth()})
    core: PartHealth | None = None      # only once a connection event was seen

    def set(self, part: str, state: str, text: str, message: str = "") -> None:
        self.parts[part] = PartHealth(state, text, message or text)

    def observe(self, event: Any) -> bool:
        """Update from one event; True when something shown changed."""
        if isinstance(event, CaptureSaved):
            self.set("camera", OK, "frame captured")
            self.set("lights", OK, "answering")
        elif isinstance(event, ItemRejected):
            self.set("models", OK, "running")
        elif isinstance(event, VerdictReady):
            self.set("models", OK, "running")
            self.set("storage", OK, "saved")
        elif isinstance(event, ConfirmationSaved):
            self.set("storage", OK, "saved")
        elif isinstance(event, Fault):
            part = {"lights": "lights", "camera": "camera", "model": "models",
                    "storage": "storage"}.get(event.kind)
            if part is None:
                return False
            self.set(part, FAILED, "failed", event.message)
        elif hasattr(event, "connected"):
            connected = bool(getattr(event, "connected"))
            message = str(getattr(event, "message", "") or "")
            self.core = PartHealth(OK if connected else FAILED,
                                   "connected" if connected else "disconnected", message)
        else:
            return False
        return True


class _Indicator(QLabel):
    """A coloured dot and "Part: state" in one label (one widget: it resizes at once)."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.setTextFormat(Qt.TextFormat.RichText)
        self.plain_text = ""

    def show_health(self, health: PartHealth, extra: str = "") -> None:
        label = self.name.capitalize() + (f" ({extra})" if extra else "")
        self.plain_text = f"{label}: {health.text or 'not checked yet'}"
        self.setText(f'<span style="color:{_COLOURS[health.state]}">&#9679;</span>&nbsp; '
                     f"{html.escape(self.plain_text)}")
        self.setToolTip(health.message)
        self.setProperty("state", health.state)


class StatusBar(QFrame):
    """One row at the bottom of the operator window."""

    def __init__(self, station_id: str, runtime: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("statusBar")
        self.health = StationHealth()
        self._runtime = runtime
        self.indicators = {name: _Indicator(name) for name in
                           ("camera", "lights", "models", "storage", "core")}
        self.latency = QLabel("Last: —")
        self.station = QLabel(station_id)
        self.notice = QLabel()
        self.notice.setObjectName("statusNotice")
        self.notice.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.notice.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self._notice_timer = QTimer(self)
        self._notice_timer.setSingleShot(True)
        self._notice_timer.timeout.connect(self.notice.clear)   # a Qt slot: gone with the label
        layout = QHBoxLayout(self)
        layout.setContentsMargins(14, 6, 14, 6)
        layout.setSpacing(24)
        for name, indicator in self.indicators.items():
            layout.addWidget(indicator)
        layout.addWidget(self.latency)
        layout.addWidget(self.notice, 1)
        layout.addWidget(self.station)
        self.refresh()

    def observe(self, event: Any) -> None:
        if self.health.observe(event):
            self.refresh()

    def set_part(self, part: str, state: str, text: str, message: str = "") -> None:
        """For what the app knows at start (e.g. devices opened); events take over later."""
        self.health.set(part, state, text, message)
        self.refresh()

    def set_latency(self, milliseconds: float) -> None:
        self.latency.setText(f"Last: {milliseconds:.0f} ms")
        self.latency.setToolTip("trigger to verdict on screen")
        self.layout().activate()

    def show_notice(self, text: str, seconds: float = 6.0) -> None:
        """A passing remark (e.g. why a key press did nothing)."""
        self.notice.setText(text)
        self._notice_timer.start(round(seconds * 1000))

    def refresh(self) -> None:
        for name, indicator in self.indicators.items():
            if name == "core":
                indicator.setVisible(self.health.core is not None)
                if self.health.core is not None:
                    indicator.show_health(self.health.core)
                continue
            part = self.health.parts[name]
            extra = self._runtime if name == "models" else ""
            indicator.show_health(part, extra)
        self.layout().activate()        # new widths now, not at the next layout pass

    def part_text(self, name: str) -> str:
        """What the bar says about a part (for tests and screenshots)."""
        return self.indicators[name].plain_text
