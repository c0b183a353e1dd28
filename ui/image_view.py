"""Numpy images on screen without copies, with overlay layers (pyqtgraph / napari style).

:func:`array_qimage` wraps an array's own buffer in a ``QImage`` (``bytesPerLine`` is the
array's row stride), so a 12 MB tray image reaches the screen without being copied; the
returned :class:`ArrayImage` keeps the array alive as long as the ``QImage`` is used.
:class:`ImageView` paints a base image and named overlay layers (the heatmap is one: an
RGBA colour-mapped layer with its own opacity that can be hidden), all scaled into the
same rectangle that fits the widget with the image's aspect ratio kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from PyQt6 import sip
from PyQt6.QtCore import QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QImage, QPainter, QPaintEvent
from PyQt6.QtWidgets import QSizePolicy, QWidget

_FORMATS = {1: QImage.Format.Format_Grayscale8, 3: QImage.Format.Format_RGB888,
            4: QImage.Format.Format_RGBA8888}
HEATMAP_LAYER = "heatmap"


@dataclass(frozen=True)
class ArrayImage:
    """A ``QImage`` over ``array``'s memory; holding this keeps the memory valid."""

    array: np.ndarray
    qimage: QImage

    @property
    def width(self) -> int:
        return self.qimage.width()

    @property
    def height(self) -> int:
        return self.qimage.height()


def array_qimage(array: np.ndarray) -> ArrayImage:
    """``QImage`` sharing ``array``'s buffer: uint8 H×W (grey), H×W×3 (RGB) or H×W×4 (RGBA).

    Rows may have any stride (a crop of a larger image works) but pixels within a row must
    be packed; an array whose pixels are not (e.g. a column-flipped view) is made
    contiguous first, the one case that copies.
    """
    if array.dtype != np.uint8:
        raise ValueError(f"images are shown from uint8 arrays, got {array.dtype}")
    channels = 1 if array.ndim == 2 else array.shape[2] if array.ndim == 3 else 0
    if channels not in _FORMATS:
        raise ValueError(f"an image must be H×W, H×W×3 or H×W×4, got shape {array.shape}")
    height, width = array.shape[:2]
    packed = array.strides[1] == channels and (array.ndim == 2 or array.strides[2] == 1)
    if not packed or array.strides[0] < 0:
        array = np.ascontiguousarray(array)
    qimage = QImage(sip.voidptr(array.ctypes.data), width, height, array.strides[0],
                    _FORMATS[channels])
    return ArrayImage(array, qimage)


@dataclass
class Layer:
    name: str
    image: ArrayImage
    opacity: float = 1.0
    visible: bool = True


class ImageView(QWidget):
    """A base image and overlay layers, scaled to fit with the aspect ratio kept.

    Layers are drawn in the order they were first set, over the base, into the base's
    rectangle (a layer of another resolution covers the same area). ``painted`` fires
    after every paint with its ``time.perf_counter()`` (for on-screen latency)."""

    painted = pyqtSignal(float)

    def __init__(self, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._base: ArrayImage | None = None
        self._layers: dict[str, Layer] = {}
        self._placeholder = placeholder
        self._background = QColor("#1c2328")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(120, 120)

    # -- content ---------------------------------------------------------------------------

    def set_image(self, array: np.ndarray | None) -> None:
        """Show ``array`` (None: the placeholder); overlay layers stay until cleared."""
        self._base = None if array is None else array_qimage(array)
        self.update()

    def clear(self, placeholder: str | None = None) -> None:
        self._base = None
        self._layers.clear()
        if placeholder is not None:
            self._placeholder = placeholder
        self.update()

    def set_layer(self, name: str, array: np.ndarray | None, opacity: float | None = None,
                  visible: bool | None = None) -> None:
        """Add or replace a layer (None removes it); unspecified opacity and visibility
        keep the layer's current ones."""
        if array is None:
            self._layers.pop(name, None)
        else:
            old = self._layers.get(name)
            self._layers[name] = Layer(
                name, array_qimage(array),
                opacity if opacity is not None else old.opacity if old else 1.0,
                visible if visible is not None else old.visible if old else True)
        self.update()

    def set_layer_visible(self, name: str, visible: bool) -> None:
        if name in self._layers and self._layers[name].visible != visible:
            self._layers[name].visible = visible
            self.update()

    def set_layer_opacity(self, name: str, opacity: float) -> None:
        if name in self._layers:
            self._layers[name].opacity = min(1.0, max(0.0, opacity))
            self.update()

    def layer(self, name: str) -> Layer | None:
        return self._layers.get(name)

    @property
    def image(self) -> ArrayImage | None:
        return self._base

    @property
    def placeholder(self) -> str:
        return self._placeholder

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    # -- geometry and painting -------------------------------------------------------------

    def image_rect(self) -> QRectF:
        """Where the base image lands: centred, as large as fits, aspect ratio kept."""
        if self._base is None:
            return QRectF()
        area = QRectF(self.rect())
        scale = min(area.width() / self._base.width, area.height() / self._base.height)
        width, height = self._base.width * scale, self._base.height * scale
        return QRectF(area.x() + (area.width() - width) / 2,
                      area.y() + (area.height() - height) / 2, width, height)

    def sizeHint(self) -> QSize:
        return QSize(480, 480)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), self._background)
        if self._base is None:
            if self._placeholder:
                painter.setPen(QColor("#90a4ae"))
                font = painter.font()
                font.setPixelSize(max(12, round(self.font().pixelSize() * 1.15)))
                painter.setFont(font)
                painter.drawText(self.rect().adjusted(12, 12, -12, -12),
                                 Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                                 self._placeholder)
        else:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            target = self.image_rect()
            painter.drawImage(target, self._base.qimage)
            for layer in self._layers.values():
                if layer.visible and layer.opacity > 0:
                    painter.setOpacity(layer.opacity)
                    painter.drawImage(target, layer.image.qimage)
            painter.setOpacity(1.0)
        painter.end()
        self.painted.emit(time.perf_counter())
