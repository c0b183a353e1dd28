"""The verdict banner: one word, in a colour, readable from two metres.

OK (green), REVIEW (amber), DAMAGED (red, with the likely defect types) while a verdict
is on screen; otherwise what the station is doing or waiting for, in calm neutral tones,
a warning tone for "try again" and an orange one for a fault.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QFont, QFontMetrics, QPaintEvent
from PyQt6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget


@dataclass(frozen=True)
class Tone:
    background: str
    foreground: str
    accent: str           # the detail line's colour


TONES: dict[str, Tone] = {
    "ok": Tone("#1e7b34", "#ffffff", "#e3f5e6"),
    "review": Tone("#f2b705", "#1d1d1d", "#2b2b2b"),
    "damaged": Tone("#b3261e", "#ffffff", "#ffe3e0"),
    "neutral": Tone("#263238", "#eceff1", "#b0bec5"),
    "busy": Tone("#1f4e79", "#ffffff", "#d6e6f5"),
    "attention": Tone("#f2b705", "#1d1d1d", "#2b2b2b"),
    "fault": Tone("#c2410c", "#ffffff", "#ffe8d9"),
}
VERDICT_TONES = {"OK": "ok", "REVIEW": "review", "DAMAGED": "damaged"}
VERDICT_TITLE_PX = 92          # about 2 cm tall letters on a 24" screen: read from 2 m
STATE_TITLE_PX = 60


def pretty_type(name: str) -> str:
    """``missing_unit`` -> ``missing unit``: taxonomy names as people read them."""
    return name.replace("_", " ")


class VerdictBanner(QFrame):
    """Title (the verdict word or the station's state), a detail line and a note.

    ``painted`` fires with ``time.perf_counter()`` after each paint, so the window can tell
    when a verdict is really on screen."""

    painted = pyqtSignal(float)

    def __init__(self, font_scale: float = 1.0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("verdictBanner")
        self._tone = "neutral"
        self._verdict: str | None = None
        self._scale = font_scale
        self.title = QLabel()
        self.title.setObjectName("bannerTitle")
        self.detail = QLabel()
        self.detail.setObjectName("bannerDetail")
        self.note = QLabel()
        self.note.setObjectName("bannerNote")
        for label in (self.title, self.detail, self.note):
            label.setWordWrap(label is not self.title)
            label.setTextFormat(Qt.TextFormat.PlainText)
        # The widest verdict word sets the title's width, so the detail column stays put
        # from one verdict to the next.
        widest = QFont(self.font())
        widest.setPixelSize(round(VERDICT_TITLE_PX * font_scale))
        widest.setWeight(QFont.Weight.Black)
        self.title.setMinimumWidth(QFontMetrics(widest).horizontalAdvance("DAMAGED") + 8)
        self.title.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Preferred)
        self.title.setAlignment(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft)
        text = QVBoxLayout()
        text.setSpacing(4)
        text.addStretch(1)
        text.addWidget(self.detail)
        text.addWidget(self.note)
        text.addStretch(1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(round(32 * font_scale), round(14 * font_scale),
                                  round(32 * font_scale), round(14 * font_scale))
        layout.setSpacing(round(36 * font_scale))
        layout.addWidget(self.title, 0)
        layout.addLayout(text, 1)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(round(170 * font_scale))
        self.show_state("Signed out", "Scan your badge to start.", "neutral")

    # -- what it shows ---------------------------------------------------------------------

    def show_verdict(self, label: str, likely_types: tuple[str, ...], fused_score: float,
                     reason: str = "") -> None:
        self._verdict = label
        if label == "DAMAGED" and likely_types:
            detail = "Likely: " + ", ".join(pretty_type(t) for t in likely_types)
        elif label == "DAMAGED":
            detail = "Damage found"
        elif label == "REVIEW":
            detail = "Look closely: choose a severity"
        else:
            detail = "No damage found"
        note = f"Damage score {fused_score:.2f}"
        if reason:
            note += f"  ·  {reason}"
        self._set(label, detail, note, VERDICT_TONES.get(label, "neutral"), VERDICT_TITLE_PX)

    def show_state(self, title: str, detail: str, tone: str = "neutral", note: str = "") -> None:
        self._verdict = None
        self._set(title, detail, note, tone, STATE_TITLE_PX)

    @property
    def verdict(self) -> str | None:
        """The verdict word on screen, None while the banner shows a state."""
        return self._verdict

    @property
    def tone(self) -> str:
        return self._tone

    def _set(self, title: str, detail: str, note: str, tone: str, title_px: int) -> None:
        colours = TONES[tone]
        self._tone = tone
        self.title.setText(title)
        self.detail.setText(detail)
        self.note.setText(note)
        self.note.setVisible(bool(note))
        px = lambda value: f"{round(value * self._scale)}px"   # noqa: E731
        self.setStyleSheet(
            f"#verdictBanner {{ background: {colours.background}; border-radius: {px(10)}; }}"
            f"#verdictBanner QLabel {{ background: transparent; }}"
            f"#bannerTitle {{ color: {colours.foreground}; font-size: {px(title_px)}; "
            f"font-weight: 900; }}"
            f"#bannerDetail {{ color: {colours.foreground}; font-size: {px(34)}; "
            f"font-weight: 600; }}"
            f"#bannerNote {{ color: {colours.accent}; font-size: {px(19)}; }}")

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        self.painted.emit(time.perf_counter())
