"""The wizard's pages: one per step (picture, instructions, result against the criterion,
actions) and the summary with Save.

Pages only show things and hold the controls; what a button does is decided by the
window (:mod:`ui.calibration.wizard_window`), which owns the wizard and the camera.
The result is told three ways at once, so it reads from across the enclosure: a large
PASS / FAIL badge in colour, one headline sentence with the measured value next to its
limit, and the detail numbers below.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
from PyQt6.QtCore import QRectF, Qt
from PyQt6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPen
from PyQt6.QtWidgets import (QFrame, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                             QScrollArea, QSizePolicy, QVBoxLayout, QWidget)

from calibration.wizard import CalibrationStep, StepResult, StepState, WizardSummary
from ui.calibration.overlay_view import OverlayView
from ui.style import (ACCENT, ACCENT_PRESSED, BACKGROUND, BORDER, SURFACE, SURFACE_RAISED, TEXT,
                      TEXT_MUTED, style_sheet)

PASS_BG, FAIL_BG, ACCEPTED_BG, SKIPPED_BG = "#1e7f46", "#b3261e", "#a8690b", "#4a5660"

# state -> (badge text, property value)
BADGES = {
    StepState.PENDING: ("NOT MEASURED", "pending"),
    StepState.PASSED: ("PASS", "pass"),
    StepState.FAILED: ("FAIL", "fail"),
    StepState.ACCEPTED: ("FAIL · ACCEPTED", "accepted"),
    StepState.SKIPPED: ("SKIPPED", "skipped"),
}

VALUE_NAMES = {
    "sharpness": "sharpness now", "best": "best sharpness seen",
    "relative_percent": "now, % of best", "readings": "readings",
    "exposure_us": "exposure (µs)", "gain_db": "gain (dB)",
    "white_balance": "white balance R / G / B", "level_percent": "card level (% of full scale)",
    "target_percent": "target level (%)", "cast_percent": "colour cast R / G / B (%)",
    "clipped_channels": "clipped channels", "proposed_white_balance": "proposed white balance",
    "proposed_exposure_us": "proposed exposure (µs)",
    "falloff_percent": "worst corner fall-off (%)",
    "mean_falloff_percent": "mean corner fall-off (%)",
    "corner_falloff_percent": "fall-off TL / TR / BR / BL (%)",
    "residual_percent": "unevenness beyond the fit (% RMS)",
    "centre_level_percent": "centre level (% of full scale)",
    "reprojection_rms_px": "re-projection error (px RMS)",
    "reprojection_max_px": "largest rim distance (px)",
    "reprojection_rms_tray_px": "in the tray image (px RMS)", "rim_found_percent": "rim found (%)",
    "corners_source": "corners", "mm_per_frame_pixel": "mm per camera pixel",
    "mm_per_tray_pixel": "mm per tray-image pixel x / y",
    "ok_below": "OK below (score)", "damaged_above": "DAMAGED above (score)",
    "expected_recall_percent": "expected recall (%)",
    "expected_fpr_percent": "good items sidelined (%)", "review_percent": "sent to REVIEW (%)",
    "good_captures": "good captures", "defective_captures": "defective captures",
}


def format_value(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        magnitude = abs(value)
        if magnitude >= 1000:
            return f"{value:,.0f}".replace(",", " ")
        if magnitude >= 10:
            return f"{value:.1f}"
        if magnitude >= 0.01 or value == 0:
            return f"{value:.3g}" if magnitude < 1 else f"{value:.2f}"
        return f"{value:.3g}"
    if isinstance(value, (tuple, list)):
        return " / ".join(format_value(v) for v in value)
    return str(value)


def value_rows(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(VALUE_NAMES.get(name, name.replace("_", " ")), format_value(value))
            for name, value in values.items()]


def headline(step: CalibrationStep, result: StepResult | None) -> str:
    """One sentence: the value that decides the step, next to its limit."""
    if result is None or not result.values:
        return ""
    values = result.values
    try:
        if step.id == "focus":
            fraction = step.tracker.pass_fraction  # type: ignore[attr-defined]
            return (f"Sharpness at {values['relative_percent']:.0f} % of the best seen "
                    f"(pass: at least {fraction:.0%}, {values['readings']} readings)")
        if step.id == "exposure":
            criteria = step.criteria  # type: ignore[attr-defined]
            cast = max(abs(c) for c in values["cast_percent"])
            return (f"Card at {values['level_percent']:.1f} % (target "
                    f"{100 * criteria.target_level:.0f} ± {100 * criteria.level_tolerance:.0f} %)"
                    f", colour cast {cast:.1f} % (at most "
                    f"{100 * criteria.neutral_tolerance:.0f} %)")
        if step.id == "uniformity":
            criteria = step.criteria  # type: ignore[attr-defined]
            return (f"Corner fall-off {values['falloff_percent']:.1f} % (at most "
                    f"{criteria.max_falloff_percent:g} %)")
        if step.id == "tray":
            criteria = step.criteria  # type: ignore[attr-defined]
            return (f"Re-projection error {values['reprojection_rms_px']:.2f} px RMS (at most "
                    f"{criteria.max_rms_px:g} px)")
        if step.id == "thresholds":
            return (f"Expected recall {values['expected_recall_percent']:.1f} % · good items "
                    f"sidelined {values['expected_fpr_percent']:.2f} %")
    except (KeyError, TypeError, ValueError, AttributeError):
        pass
    return result.summary()


def wizard_style(scale: float = 1.0) -> str:
    """The operator window's theme plus the wizard's own parts."""
    def px(value: float) -> str:
        return f"{round(value * scale)}px"

    return style_sheet(scale) + f"""
    #wizardHeader {{ background: #0d1114; border-bottom: 1px solid {BORDER}; }}
    #wizardTitle {{ font-size: {px(24)}; font-weight: 700; }}
    #wizardContext {{ color: {TEXT_MUTED}; font-size: {px(16)}; }}
    #stepChip {{ font-size: {px(15)}; font-weight: 600; color: {TEXT_MUTED};
                 background: {SURFACE}; border: 1px solid {BORDER}; border-radius: {px(14)};
                 padding: {px(4)} {px(12)}; }}
    #stepChip[state="pass"] {{ color: #b9f6ca; border-color: {PASS_BG}; }}
    #stepChip[state="fail"] {{ color: #ffb4ab; border-color: {FAIL_BG}; }}
    #stepChip[state="accepted"] {{ color: #ffd180; border-color: {ACCEPTED_BG}; }}
    #stepChip[state="skipped"] {{ color: #b0bec5; border-style: dashed; }}
    #stepChip[current="true"] {{ background: {ACCENT}; color: #ffffff; border-color: {ACCENT}; }}

    #stepPanel, #summaryPanel, #thresholdPanel {{ background: {SURFACE};
        border: 1px solid {BORDER}; border-radius: {px(10)}; }}
    #stepNumber {{ color: {TEXT_MUTED}; font-size: {px(14)}; font-weight: 700;
                   letter-spacing: 1px; }}
    #stepTitle {{ font-size: {px(30)}; font-weight: 700; }}
    #instructions {{ font-size: {px(19)}; }}
    #criterionCaption {{ color: {TEXT_MUTED}; font-size: {px(13)}; font-weight: 700;
                         letter-spacing: 1px; }}
    #criterion {{ color: {TEXT_MUTED}; font-size: {px(15)}; }}
    #verdict {{ font-size: {px(40)}; font-weight: 800; border-radius: {px(10)};
                padding: {px(6)} {px(10)}; color: {TEXT}; background: {SURFACE_RAISED};
                border: 2px dashed {BORDER}; }}
    #verdict[state="pass"] {{ background: {PASS_BG}; border: 2px solid {PASS_BG}; }}
    #verdict[state="fail"] {{ background: {FAIL_BG}; border: 2px solid {FAIL_BG}; }}
    #verdict[state="accepted"] {{ background: {ACCEPTED_BG}; border: 2px solid {ACCEPTED_BG}; }}
    #verdict[state="skipped"] {{ background: {SKIPPED_BG}; border: 2px solid {SKIPPED_BG}; }}
    #headline {{ font-size: {px(21)}; font-weight: 600; }}
    #values {{ font-size: {px(14)}; color: {TEXT}; }}
    #details {{ font-size: {px(16)}; color: #ffcf66; }}
    #message {{ font-size: {px(16)}; color: #ff8a80; font-weight: 600; }}
    #message[tone="info"] {{ color: #8fd3ff; }}
    #reason {{ font-size: {px(17)}; min-height: {px(48)}; }}

    QPushButton#wizardButton, QPushButton#primaryButton, QPushButton#navButton {{
        background: {SURFACE_RAISED}; border: 1px solid {BORDER}; border-radius: {px(8)};
        font-size: {px(18)}; font-weight: 600; color: {TEXT}; min-height: {px(52)};
        padding: 0 {px(16)}; }}
    QPushButton#wizardButton:pressed, QPushButton#navButton:pressed {{ background: {BORDER}; }}
    QPushButton#primaryButton {{ background: {ACCENT}; border-color: {ACCENT}; color: #ffffff; }}
    QPushButton#primaryButton:pressed {{ background: {ACCENT_PRESSED}; }}
    QPushButton#wizardButton:disabled, QPushButton#primaryButton:disabled,
    QPushButton#navButton:disabled {{ background: #192024; border-color: #232c32;
                                      color: #5d6b74; }}
    QScrollArea#panelScroll {{ background: transparent; }}
    QScrollBar:vertical {{ background: transparent; width: {px(10)}; margin: 0; }}
    QScrollBar::handle:vertical {{ background: {BORDER}; border-radius: {px(5)};
                                   min-height: {px(40)}; }}
    QScrollBar::add-line:vertical, QScrollBar::sub-line:vertical {{ height: 0; }}
    QScrollBar::add-page:vertical, QScrollBar::sub-page:vertical {{ background: none; }}
    QPushButton#navButton {{ min-width: {px(160)}; font-size: {px(20)}; }}

    #focusBar {{ min-height: {px(40)}; max-height: {px(40)}; font-size: {px(18)};
                 font-weight: 700; text-align: center; color: #ffffff; }}
    #focusBar::chunk {{ background: #a8690b; border-radius: {px(5)}; }}
    #focusBar[ok="true"]::chunk {{ background: {PASS_BG}; }}
    #focusBest {{ font-size: {px(17)}; }}
    #cameraNow {{ font-size: {px(15)}; color: {TEXT_MUTED}; }}
    #hint {{ font-size: {px(15)}; color: {TEXT_MUTED}; }}
    QComboBox {{ background: {BACKGROUND}; border: 2px solid {BORDER}; border-radius: {px(8)};
                 padding: 0 {px(10)}; font-size: {px(17)}; min-height: {px(46)}; }}
    QComboBox QAbstractItemView {{ background: {SURFACE_RAISED}; font-size: {px(17)};
                                   selection-background-color: {ACCENT}; }}
    #fieldCaption {{ color: {TEXT_MUTED}; font-size: {px(14)}; font-weight: 700; }}
    #runField {{ font-size: {px(16)}; min-height: {px(46)}; }}

    #summaryTitle {{ font-size: {px(30)}; font-weight: 700; }}
    #summaryCell {{ font-size: {px(17)}; }}
    #summaryHead {{ color: {TEXT_MUTED}; font-size: {px(13)}; font-weight: 700;
                    letter-spacing: 1px; }}
    #summaryState {{ font-size: {px(16)}; font-weight: 800; border-radius: {px(6)};
                     padding: {px(4)} {px(8)}; background: {SURFACE_RAISED}; }}
    #summaryState[state="pass"] {{ background: {PASS_BG}; }}
    #summaryState[state="fail"] {{ background: {FAIL_BG}; }}
    #summaryState[state="accepted"] {{ background: {ACCEPTED_BG}; }}
    #summaryState[state="skipped"] {{ background: {SKIPPED_BG}; }}
    #problems {{ font-size: {px(17)}; color: #ff8a80; font-weight: 600; }}
    #saved {{ font-size: {px(24)}; font-weight: 700; color: #b9f6ca; }}
    #footer {{ background: #0d1114; border-top: 1px solid {BORDER}; }}
    #footerStatus {{ font-size: {px(16)}; color: {TEXT_MUTED}; }}
    #footerStatus[tone="error"] {{ color: #ff8a80; }}
    """


def set_property(widget: QWidget, name: str, value: Any) -> None:
    """Set a style property and re-polish, so the style sheet's selector applies."""
    if widget.property(name) != value:
        widget.setProperty(name, value)
        widget.style().unpolish(widget)
        widget.style().polish(widget)
        widget.update()


def _label(text: str = "", name: str = "", wrap: bool = True) -> QLabel:
    label = QLabel(text)
    if name:
        label.setObjectName(name)
    label.setWordWrap(wrap)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
    return label


def button(text: str, name: str = "wizardButton") -> QPushButton:
    widget = QPushButton(text)
    widget.setObjectName(name)
    widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    widget.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    return widget


class StepPage(QWidget):
    """One step: the picture on the left (``view``, or ``left`` given), the step's text,
    result and actions on the right; ``extras`` is where the window adds step-specific
    controls (the focus bar, the method picker...)."""

    def __init__(self, step: CalibrationStep, number: int, count: int,
                 left: QWidget | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.step = step
        self.setObjectName(f"page-{step.id}")
        self.view = OverlayView("Waiting for the camera…", self)
        if left is not None:           # a page without the camera picture (thresholds)
            self.view.hide()
        panel = QFrame()
        panel.setObjectName("stepPanel")
        column = QVBoxLayout(panel)
        column.setContentsMargins(22, 18, 22, 18)
        column.setSpacing(8)

        self.number = _label(f"STEP {number} OF {count}", "stepNumber")
        self.title = _label(step.title, "stepTitle")
        self.instructions = _label(step.instructions, "instructions")
        self.criterion_caption = _label("PASS WHEN", "criterionCaption")
        self.criterion = _label(step.criterion(), "criterion")
        self.verdict = _label("", "verdict", wrap=False)
        self.verdict.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.headline = _label("", "headline")
        self.extras = QVBoxLayout()
        self.extras.setSpacing(8)
        self.values = _label("", "values")
        self.values.setTextFormat(Qt.TextFormat.RichText)
        self.details = _label("", "details")
        self.message = _label("", "message")
        self.reason = QLineEdit()
        self.reason.setObjectName("reason")
        self.reason.setFocusPolicy(Qt.FocusPolicy.ClickFocus)   # typing starts on a tap
        self.reason.setPlaceholderText("Reason to accept or skip")

        self.measure_button = button("Measure", "primaryButton")
        self.redo_button = button("Redo")
        self.accept_button = button("Accept failure")
        self.skip_button = button("Skip")
        actions = QHBoxLayout()
        actions.setSpacing(8)
        actions.addWidget(self.measure_button, 3)
        actions.addWidget(self.redo_button, 2)
        actions.addSpacing(12)
        actions.addWidget(self.reason, 7)
        actions.addWidget(self.accept_button, 3)
        actions.addWidget(self.skip_button, 2)

        for widget in (self.number, self.title, self.instructions, self.criterion_caption,
                       self.criterion):
            column.addWidget(widget)
        column.addSpacing(6)
        column.addWidget(self.verdict)
        column.addWidget(self.headline)
        column.addLayout(self.extras)
        column.addWidget(self.details)
        column.addWidget(self.values)
        column.addStretch(1)
        column.addWidget(self.message)

        scroll = QScrollArea()            # small screens: scroll rather than clip
        scroll.setObjectName("panelScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(panel)
        scroll.viewport().setAutoFillBackground(False)
        scroll.setMinimumWidth(440)
        scroll.setMaximumWidth(620)

        left_column = QVBoxLayout()
        left_column.setSpacing(10)
        left_column.addWidget(left if left is not None else self.view, 1)
        left_column.addLayout(actions)
        row = QHBoxLayout(self)
        row.setContentsMargins(14, 14, 14, 14)
        row.setSpacing(14)
        row.addLayout(left_column, 3)
        row.addWidget(scroll, 2)
        self.show_result(None)

    def show_result(self, result: StepResult | None) -> None:
        """The step's state and latest result (None: as the step is now)."""
        step = self.step
        state = step.state
        text, tone = BADGES[state]
        self.verdict.setText(text)
        set_property(self.verdict, "state", tone)
        self.criterion.setText(result.criterion if result is not None else step.criterion())
        if state is StepState.SKIPPED:
            self.headline.setText(f"Skipped: {step.reason}")
            self.values.setText("")
            self.details.setText("The profile keeps this section as it was.")
            return
        self.headline.setText(headline(step, result))
        rows = value_rows(result.values) if result is not None else []
        self.values.setText(
            "<table cellspacing='0' cellpadding='1'>" + "".join(
                f"<tr><td style='color:{TEXT_MUTED}; padding-right:14px'>{name}</td>"
                f"<td><b>{value}</b></td></tr>" for name, value in rows) + "</table>"
            if rows else "")
        notes = list(result.details) if result is not None else []
        if state is StepState.ACCEPTED:
            notes.append(f"Accepted: {step.reason}")
        self.details.setText("\n".join(f"• {note}" for note in notes))

    def say(self, text: str, tone: str = "error") -> None:
        """A line under the result: why an action was refused, or what happens next."""
        self.message.setText(text)
        set_property(self.message, "tone", tone)


class ScoreHistogram(QWidget):
    """The validation scores of good and damaged captures, with the chosen thresholds:
    how well the two groups separate, and where the REVIEW band sits."""

    BINS = 40

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(360, 220)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._good = np.zeros(self.BINS)
        self._bad = np.zeros(self.BINS)
        self._thresholds: tuple[float, float] | None = None
        self._empty = "Pick the validation run and measure: the scores appear here."

    def set_scores(self, labels: Sequence[bool] | None, scores: Sequence[float] | None,
                   thresholds: tuple[float, float] | None = None) -> None:
        if labels is None or scores is None:
            self._good[:] = 0
            self._bad[:] = 0
        else:
            labels_array = np.asarray(labels, bool)
            scores_array = np.clip(np.asarray(scores, float), 0, 1)
            edges = np.linspace(0, 1, self.BINS + 1)
            self._good = np.histogram(scores_array[~labels_array], edges)[0].astype(float)
            self._bad = np.histogram(scores_array[labels_array], edges)[0].astype(float)
        self._thresholds = thresholds
        self.update()

    @property
    def counts(self) -> tuple[int, int]:
        return int(self._good.sum()), int(self._bad.sum())

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.fillRect(self.rect(), QColor("#1c2328"))
        font = QFont(self.font())
        font.setPixelSize(14)
        painter.setFont(font)
        if not self._good.any() and not self._bad.any():
            painter.setPen(QColor(TEXT_MUTED))
            painter.drawText(QRectF(self.rect()).adjusted(16, 16, -16, -16),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             self._empty)
            painter.end()
            return
        area = QRectF(self.rect()).adjusted(46, 34, -16, -34)
        # Square-root heights: a few hundred good captures and a few dozen damaged ones
        # both stay visible.
        peak = math.sqrt(max(self._good.max(), self._bad.max(), 1))
        width = area.width() / self.BINS
        for counts, colour, offset in ((self._good, QColor(90, 160, 230, 200), 0.0),
                                       (self._bad, QColor(255, 140, 60, 200), 0.5)):
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(colour)
            for index, count in enumerate(counts):
                if count <= 0:
                    continue
                height = area.height() * math.sqrt(count) / peak
                painter.drawRect(QRectF(area.x() + (index + offset) * width,
                                        area.bottom() - height, width * 0.5, height))
        painter.setPen(QPen(QColor(BORDER), 1))
        painter.drawLine(area.bottomLeft(), area.bottomRight())
        painter.setPen(QColor(TEXT_MUTED))
        for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
            x = area.x() + tick * area.width()
            painter.drawText(QRectF(x - 30, area.bottom() + 4, 60, 20),
                             Qt.AlignmentFlag.AlignCenter, f"{tick:g}")
        painter.drawText(QRectF(area.x(), area.bottom() + 16, area.width(), 18),
                         Qt.AlignmentFlag.AlignRight, "fused damage score")
        painter.setPen(QColor(90, 160, 230))
        painter.drawText(QRectF(area.x(), 6, 200, 20), Qt.AlignmentFlag.AlignLeft,
                         f"■ good ({int(self._good.sum())})")
        painter.setPen(QColor(255, 140, 60))
        painter.drawText(QRectF(area.x() + 170, 6, 220, 20), Qt.AlignmentFlag.AlignLeft,
                         f"■ damaged ({int(self._bad.sum())})")
        if self._thresholds is not None:
            ok_below, damaged_above = self._thresholds
            for value, colour, text in ((ok_below, "#3ddc84", "OK below"),
                                        (damaged_above, "#ff5a4f", "DAMAGED above")):
                x = area.x() + float(np.clip(value, 0, 1)) * area.width()
                painter.setPen(QPen(QColor(colour), 2, Qt.PenStyle.DashLine))
                painter.drawLine(int(x), int(area.top()), int(x), int(area.bottom()))
                painter.setPen(QColor(colour))
                right = x > area.center().x()
                box = QRectF(x - 186 if right else x + 6,
                             area.top() + (0 if text.startswith("OK") else 20), 180, 18)
                painter.drawText(box, Qt.AlignmentFlag.AlignRight if right
                                 else Qt.AlignmentFlag.AlignLeft, f"{text} {value:.3f}")
        painter.end()


class SummaryPage(QWidget):
    """Step 6: every step's outcome, what still blocks saving, who saves, and Save."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("page-summary")
        panel = QFrame()
        panel.setObjectName("summaryPanel")
        column = QVBoxLayout(panel)
        column.setContentsMargins(26, 20, 26, 20)
        column.setSpacing(12)
        self.title = _label("Summary and save", "summaryTitle")
        self.context = _label("", "instructions")
        self.grid = QGridLayout()
        self.grid.setHorizontalSpacing(18)
        self.grid.setVerticalSpacing(10)
        self.grid.setColumnStretch(2, 3)
        self.grid.setColumnStretch(3, 2)
        self.grid.setColumnMinimumWidth(0, 250)
        self.problems = _label("", "problems")
        self.author = QLineEdit()
        self.author.setPlaceholderText("Your name (recorded in the profile)")
        self.note = QLineEdit()
        self.note.setPlaceholderText("Note, e.g. why you calibrated (optional)")
        self.save_button = button("Save new profile version", "primaryButton")
        self.close_button = button("Close")
        self.saved = _label("", "saved")
        self.message = _label("", "message")
        fields = QGridLayout()
        fields.setHorizontalSpacing(12)
        fields.addWidget(_label("SAVED BY", "fieldCaption"), 0, 0)
        fields.addWidget(self.author, 0, 1)
        fields.addWidget(_label("NOTE", "fieldCaption"), 1, 0)
        fields.addWidget(self.note, 1, 1)
        actions = QHBoxLayout()
        actions.addWidget(self.save_button, 2)
        actions.addWidget(self.close_button, 1)
        column.addWidget(self.title)
        column.addWidget(self.context)
        column.addLayout(self.grid)
        column.addWidget(self.problems)
        column.addStretch(1)
        column.addLayout(fields)
        column.addWidget(self.message)
        column.addWidget(self.saved)
        column.addLayout(actions)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(14, 14, 14, 14)
        outer.addWidget(panel)
        self.rows: list[tuple[QLabel, QLabel, QLabel, QLabel]] = []

    def show_summary(self, summary: WizardSummary,
                     headlines: Mapping[str, str]) -> None:
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.rows = []
        for column, text in enumerate(("STEP", "RESULT", "MEASURED", "REASON")):
            self.grid.addWidget(_label(text, "summaryHead", wrap=False), 0, column)
        for index, row in enumerate(summary.rows, start=1):
            text, tone = BADGES[row.state]
            state = _label(text, "summaryState", wrap=False)
            state.setAlignment(Qt.AlignmentFlag.AlignCenter)
            set_property(state, "state", tone)
            measured = headlines.get(row.step_id) or row.summary
            cells = (_label(f"{index}. {row.title}", "summaryCell"), state,
                     _label(measured, "summaryCell"), _label(row.reason or "–", "summaryCell"))
            for column, cell in enumerate(cells):
                self.grid.addWidget(cell, index, column,
                                    alignment=Qt.AlignmentFlag.AlignVCenter)
            self.rows.append(cells)  # type: ignore[arg-type]
        start = (f"Starting from profile {summary.base_version}." if summary.base_version
                 != "none" else "This will be the station's first calibration profile.")
        self.context.setText(f"{start} Saving writes the next version and makes it current; "
                             f"earlier versions stay (roll back with `station-app profile "
                             f"rollback`).")
        self.problems.setText("\n".join(f"• {problem}" for problem in summary.problems))
