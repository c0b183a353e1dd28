"""What went wrong, for whom, and the two ways out: Retry and Back."""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QAction
from PyQt6.QtWidgets import QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ui.action_button import ActionButton

AUDIENCE_TITLES = {"technician": "Call a technician", "associate": "Please check"}
KIND_NAMES = {"lights": "Lights", "camera": "Camera", "model": "Models", "storage": "Storage",
              "timeout": "Timeout", "internal": "Station software"}


class FaultPanel(QFrame):
    """Shows one ``Fault`` event; the Retry and Back actions belong to the window."""

    def __init__(self, retry: QAction, back: QAction, font_scale: float = 1.0,
                 button_height: int = 64, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("faultPanel")
        self.audience = QLabel()
        self.audience.setObjectName("faultAudience")
        self.kind = QLabel()
        self.kind.setObjectName("faultKind")
        self.message = QLabel()
        self.message.setObjectName("faultMessage")
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.capture = QLabel()
        self.capture.setObjectName("faultCapture")
        self.capture.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.setSpacing(10)
        buttons.addWidget(ActionButton(retry, "R", role="primary", height=button_height))
        buttons.addWidget(ActionButton(back, "Esc", height=button_height))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(22, 18, 22, 18)
        layout.setSpacing(10)
        layout.addWidget(self.audience)
        layout.addWidget(self.kind)
        layout.addWidget(self.message, 1)
        layout.addWidget(self.capture)
        layout.addLayout(buttons)

    def show_fault(self, kind: str, message: str, for_whom: str, recoverable: bool,
                   capture_id: str | None) -> None:
        self.audience.setText(AUDIENCE_TITLES.get(for_whom, "Fault"))
        what = KIND_NAMES.get(kind, kind.capitalize())
        self.kind.setText(f"{what} fault" + ("" if recoverable else " (cannot be retried)"))
        self.message.setText(message)
        self.capture.setText(f"Frame kept as capture {capture_id}." if capture_id else
                             "Nothing was captured.")
