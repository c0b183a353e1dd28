"""The live frame with a calibration step's overlay, and tray corners to drag.

:class:`OverlayView` is ``ui.image_view.ImageView`` (zero-copy frame, layers) plus what
the wizard draws over it: the step's shapes (``calibration.wizard.OverlayShape``, in
full-frame pixels, coloured by pass/fail), a false-colour map (the lighting's relative
brightness, as a layer stretched over the frame), and corner handles that the
technician drags with the mouse or a finger (Qt turns touches into mouse events). The
frame shown may be a scaled-down copy: shapes are placed through the full frame's size.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import (QBrush, QColor, QFont, QFontMetrics, QMouseEvent, QPainter,
                         QPainterPath, QPaintEvent, QPen, QPolygonF)
from PyQt6.QtWidgets import QWidget

from calibration.wizard import Overlay, OverlayShape
from ui.image_view import ImageView

MAP_LAYER = "brightness-map"
PASS_COLOUR, FAIL_COLOUR, NEUTRAL_COLOUR = "#3ddc84", "#ff5a4f", "#4fc3f7"
EDGE_COLOUR = "#ffd54f"
CORNER_NAMES = ("TL", "TR", "BR", "BL")

Point = tuple[float, float]


def shape_colour(ok: bool | None) -> QColor:
    return QColor(PASS_COLOUR if ok is True else FAIL_COLOUR if ok is False else NEUTRAL_COLOUR)


def brightness_rgba(brightness: np.ndarray, low: float | None = None,
                    high: float = 1.05) -> np.ndarray:
    """Relative brightness (1 = tray centre) as an RGBA false-colour layer (viridis:
    dark violet where the light falls off most, yellow at and above the centre)."""
    brightness = np.asarray(brightness, np.float32)
    low = min(0.5, float(np.nanmin(brightness))) if low is None else low
    scaled = np.clip((brightness - low) / max(high - low, 1e-6), 0, 1)
    coloured = cv2.applyColorMap(np.round(scaled * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)
    rgba = np.empty(brightness.shape + (4,), np.uint8)
    rgba[..., :3] = cv2.cvtColor(coloured, cv2.COLOR_BGR2RGB)
    rgba[..., 3] = 255
    return rgba


class OverlayView(ImageView):
    """A frame, the step's shapes over it, and optionally four draggable corners.

    ``corners_moved`` fires when a drag ends, with the four corners in full-frame pixels
    (the order they were given in: top-left, top-right, bottom-right, bottom-left).
    """

    corners_moved = pyqtSignal(object)

    HANDLE_RADIUS = 13      # drawn, widget pixels
    GRAB_RADIUS = 34        # a press this close to a handle takes it (a fingertip)

    def __init__(self, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(placeholder, parent)
        self._frame_size: tuple[int, int] | None = None
        self._shapes: tuple[OverlayShape, ...] = ()
        self._handles: list[Point] = []
        self._handles_ok: bool | None = None
        self._dragging: int | None = None
        self._note = ""
        self.setMouseTracking(False)

    # -- content -------------------------------------------------------------------------

    def set_frame(self, preview: np.ndarray | None, frame_size: tuple[int, int] | None) -> None:
        """Show ``preview`` (any size) standing for a frame of ``frame_size`` (w, h)."""
        self._frame_size = None if frame_size is None else (int(frame_size[0]),
                                                            int(frame_size[1]))
        self.set_image(preview)

    def set_overlay(self, overlay: Overlay | None, map_opacity: float = 0.55) -> None:
        """The step's shapes and map; an editable polygon becomes the drag handles
        (unless a drag is under way)."""
        shapes = tuple(overlay.shapes) if overlay is not None else ()
        editable = next((s for s in shapes if s.editable and s.kind == "polygon"), None)
        self._shapes = tuple(s for s in shapes if s is not editable)
        if editable is not None and self._dragging is None:
            self._handles = [tuple(map(float, p)) for p in editable.points]
            self._handles_ok = editable.ok
        if overlay is not None and overlay.image is not None:
            self.set_layer(MAP_LAYER, brightness_rgba(overlay.image), opacity=map_opacity)
        else:
            self.set_layer(MAP_LAYER, None)
        self._note = overlay.image_label if overlay is not None and overlay.image is not None \
            else ""
        self.update()

    def set_handles(self, corners: Sequence[Sequence[float]] | None,
                    ok: bool | None = None) -> None:
        """Corners to drag (full-frame pixels); None removes them."""
        self._handles = [] if corners is None else [(float(x), float(y)) for x, y in corners]
        self._handles_ok = ok
        self._dragging = None
        self.update()

    @property
    def handles(self) -> tuple[Point, ...]:
        return tuple(self._handles)

    @property
    def shapes(self) -> tuple[OverlayShape, ...]:
        return self._shapes

    @property
    def frame_size(self) -> tuple[int, int] | None:
        return self._frame_size

    # -- coordinates ---------------------------------------------------------------------

    def _scale(self) -> tuple[QRectF, float, float] | None:
        rect = self.image_rect()
        if rect.isEmpty() or self._frame_size is None:
            return None
        width, height = self._frame_size
        return rect, rect.width() / width, rect.height() / height

    def frame_to_widget(self, x: float, y: float) -> QPointF:
        """A full-frame pixel (centre at integer coordinates) on the widget."""
        scale = self._scale()
        if scale is None:
            return QPointF(-1e6, -1e6)
        rect, sx, sy = scale
        return QPointF(rect.x() + (x + 0.5) * sx, rect.y() + (y + 0.5) * sy)

    def widget_to_frame(self, point: QPointF) -> Point:
        scale = self._scale()
        if scale is None:
            return (0.0, 0.0)
        rect, sx, sy = scale
        width, height = self._frame_size  # type: ignore[misc]
        x = (point.x() - rect.x()) / sx - 0.5
        y = (point.y() - rect.y()) / sy - 0.5
        return (float(np.clip(x, 0, width - 1)), float(np.clip(y, 0, height - 1)))

    # -- dragging ------------------------------------------------------------------------

    def handle_at(self, point: QPointF) -> int | None:
        best, best_distance = None, float(self.GRAB_RADIUS)
        for index, (x, y) in enumerate(self._handles):
            where = self.frame_to_widget(x, y)
            distance = float(np.hypot(where.x() - point.x(), where.y() - point.y()))
            if distance <= best_distance:
                best, best_distance = index, distance
        return best

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._handles:
            self._dragging = self.handle_at(event.position())
            if self._dragging is not None:
                event.accept()
                self.update()
                return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._dragging is not None:
            self._handles[self._dragging] = self.widget_to_frame(event.position())
            event.accept()
            self.update()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._dragging is not None and event.button() == Qt.MouseButton.LeftButton:
            self._handles[self._dragging] = self.widget_to_frame(event.position())
            self._dragging = None
            self._handles_ok = None          # unknown until measured again
            event.accept()
            self.update()
            self.corners_moved.emit(tuple(self._handles))
            return
        super().mouseReleaseEvent(event)

    # -- painting ------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.image is None or self._frame_size is None:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        font = QFont(self.font())
        font.setPixelSize(15)
        font.setWeight(QFont.Weight.DemiBold)
        painter.setFont(font)
        for shape in self._shapes:
            self._paint_shape(painter, shape)
        if self._handles:
            self._paint_handles(painter)
        if self._note:
            self._label(painter, QPointF(self.image_rect().x() + 10,
                                         self.image_rect().bottom() - 12), self._note,
                        QColor("#e8edf0"))
        painter.end()

    def _points(self, points: Sequence[Sequence[float]]) -> list[QPointF]:
        return [self.frame_to_widget(float(x), float(y)) for x, y in points]

    def _paint_shape(self, painter: QPainter, shape: OverlayShape) -> None:
        points = self._points(shape.points)
        if not points:
            return
        colour = shape_colour(shape.ok)
        if shape.kind == "points":
            if len(points) > 8:          # an edge trace (the rim found): small dots
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(QBrush(QColor(EDGE_COLOUR)))
                for point in points:
                    painter.drawEllipse(point, 2.2, 2.2)
                return
            painter.setPen(QPen(QColor("#0b0f12"), 2))
            painter.setBrush(QBrush(colour))
            for point in points:
                painter.drawEllipse(point, 7, 7)
            if shape.label:
                self._label(painter, points[0] + QPointF(10, -10), shape.label, colour)
            return
        pen = QPen(colour, 3)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if shape.kind == "polygon":
            painter.drawPolygon(QPolygonF(points))
        else:
            painter.drawPolyline(QPolygonF(points))
        if shape.label:
            top = min(points, key=lambda p: (p.y(), p.x()))
            self._label(painter, top + QPointF(6, -10), shape.label, colour)

    def _paint_handles(self, painter: QPainter) -> None:
        colour = shape_colour(self._handles_ok)
        points = self._points(self._handles)
        pen = QPen(colour, 3)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPolygon(QPolygonF(points))
        for index, point in enumerate(points):
            active = index == self._dragging
            fill = QColor(colour)
            fill.setAlpha(200 if active else 90)
            painter.setPen(QPen(QColor("#ffffff"), 2.5))
            painter.setBrush(QBrush(fill))
            radius = self.HANDLE_RADIUS * (1.3 if active else 1.0)
            painter.drawEllipse(point, radius, radius)
            painter.drawLine(point + QPointF(-4, 0), point + QPointF(4, 0))
            painter.drawLine(point + QPointF(0, -4), point + QPointF(0, 4))
            name = CORNER_NAMES[index] if index < len(CORNER_NAMES) else str(index + 1)
            self._label(painter, point + QPointF(radius + 4, -radius - 2), name, colour)

    @staticmethod
    def _label(painter: QPainter, at: QPointF, text: str, colour: QColor) -> None:
        metrics = QFontMetrics(painter.font())
        width = metrics.horizontalAdvance(text) + 10
        height = metrics.height() + 4
        box = QRectF(at.x(), at.y() - height + 4, width, height)
        path = QPainterPath()
        path.addRoundedRect(box, 4, 4)
        painter.fillPath(path, QColor(10, 14, 17, 200))
        painter.setPen(colour)
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
