"""A touch-sized button that shows its action's name and the key that does the same.

Every action of the operator window is a ``QAction`` with a shortcut on the window;
the button only mirrors it (text, enabled, checked) and triggers it when tapped, so a
tap and a key press are the same thing. Buttons take no keyboard focus: Space and Enter
belong to the window's shortcuts, never to whichever button was tapped last. The two
lines of text are painted here (the style sheet draws only the button's body), so their
colours always follow the button's own state.
"""

from __future__ import annotations

from PyQt6.QtCore import QRectF, QSize, Qt
from PyQt6.QtGui import QAction, QColor, QFont, QFontMetrics, QPainter, QPaintEvent
from PyQt6.QtWidgets import QPushButton, QSizePolicy, QWidget

# (name colour, key colour) by look.
_TEXT_COLOURS = {
    "plain": ("#e8edf0", "#9fb0bb"),
    "primary": ("#ffffff", "#d7e5fb"),
    "checked": ("#10243f", "#3a5273"),
    "disabled": ("#5d6b74", "#4a565e"),
}


class ActionButton(QPushButton):
    """``action``'s text above its key hint; ``role`` picks the body's style in the
    window's style sheet: "primary", "toggle" or "" (plain)."""

    def __init__(self, action: QAction, key_hint: str, *, role: str = "",
                 height: int = 64, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.action = action
        self.key_hint = key_hint
        self.role = role
        self.setObjectName("actionButton")
        self.setProperty("role", role)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setCheckable(action.isCheckable())
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(height)
        self.clicked.connect(self._tapped)
        action.changed.connect(self._mirror)
        self._mirror()

    @property
    def name(self) -> str:
        return self.action.text().replace("&", "")

    def _tapped(self) -> None:
        if self.action.isCheckable():
            self.setChecked(self.action.isChecked())   # the action decides, not the tap
        self.action.trigger()

    def _mirror(self) -> None:
        self.setEnabled(self.action.isEnabled())
        if self.action.isCheckable():
            self.setChecked(self.action.isChecked())
        self.setToolTip(self.action.toolTip())
        self.updateGeometry()
        self.update()

    def set_marked(self, marked: bool) -> None:
        """A highlight border (e.g. a defect type the models think likely)."""
        if bool(self.property("marked")) != marked:
            self.setProperty("marked", marked)
            self.style().unpolish(self)
            self.style().polish(self)

    # -- size and painting -----------------------------------------------------------------

    def _fonts(self) -> tuple[QFont, QFont]:
        name = QFont(self.font())
        name.setPixelSize(max(12, round(self.height() * 0.30)))
        name.setWeight(QFont.Weight.DemiBold)
        key = QFont(self.font())
        key.setPixelSize(max(10, round(self.height() * 0.2)))
        return name, key

    def sizeHint(self) -> QSize:
        name_font, key_font = self._fonts()
        width = max(QFontMetrics(name_font).horizontalAdvance(self.name),
                    QFontMetrics(key_font).horizontalAdvance(self.key_hint))
        return QSize(width + 32, self.height())

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)            # the body, from the style sheet; no text
        if not self.isEnabled():
            look = "disabled"
        elif self.isChecked():
            look = "checked"
        elif self.role == "primary":
            look = "primary"
        else:
            look = "plain"
        name_colour, key_colour = _TEXT_COLOURS[look]
        name_font, key_font = self._fonts()
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        area = QRectF(self.rect()).adjusted(8, 4, -8, -4)
        if self.key_hint:
            name_area = QRectF(area.x(), area.y(), area.width(), area.height() * 0.62)
            key_area = QRectF(area.x(), area.y() + area.height() * 0.60, area.width(),
                              area.height() * 0.40)
        else:
            name_area, key_area = area, QRectF()
        painter.setFont(name_font)
        painter.setPen(QColor(name_colour))
        align = Qt.AlignmentFlag.AlignHCenter
        painter.drawText(name_area, align | (Qt.AlignmentFlag.AlignBottom if self.key_hint
                                             else Qt.AlignmentFlag.AlignVCenter),
                         QFontMetrics(name_font).elidedText(self.name, Qt.TextElideMode.ElideRight,
                                                            int(name_area.width())))
        if self.key_hint:
            painter.setFont(key_font)
            painter.setPen(QColor(key_colour))
            painter.drawText(key_area, align | Qt.AlignmentFlag.AlignTop, self.key_hint)
        painter.end()
