"""Numpy images into QImage without copies, and the overlay layers of ImageView."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from PyQt6.QtGui import QColor, QImage

from engines.heatmap import heatmap_layer
from ui.image_view import HEATMAP_LAYER, ImageView, array_qimage


def _rgb(height: int = 120, width: int = 160) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def _pixel(image: QImage, x: int, y: int) -> tuple[int, ...]:
    return QColor(image.pixel(x, y)).getRgb()[:3]


def test_rgb_array_is_shown_from_its_own_memory(qapp):
    array = _rgb()
    shown = array_qimage(array)
    assert int(shown.qimage.constBits()) == array.ctypes.data      # the same buffer
    assert shown.qimage.bytesPerLine() == array.strides[0]
    assert shown.qimage.format() is QImage.Format.Format_RGB888
    assert _pixel(shown.qimage, 17, 9) == tuple(array[9, 17])
    array[9, 17] = (1, 2, 3)                  # shared memory: the image sees the change
    assert _pixel(shown.qimage, 17, 9) == (1, 2, 3)


def test_a_crop_view_of_a_larger_image_is_not_copied_either(qapp):
    array = _rgb(200, 300)
    view = array[20:150, 30:250]
    assert not view.flags.c_contiguous
    shown = array_qimage(view)
    assert int(shown.qimage.constBits()) == view.ctypes.data
    assert shown.qimage.bytesPerLine() == array.strides[0]
    assert (shown.width, shown.height) == (220, 130)
    assert _pixel(shown.qimage, 5, 7) == tuple(array[27, 35])


def test_grey_and_rgba_formats_and_the_one_copying_case(qapp):
    grey = np.arange(64 * 48, dtype=np.uint32).reshape(48, 64).astype(np.uint8)
    shown = array_qimage(grey)
    assert shown.qimage.format() is QImage.Format.Format_Grayscale8
    assert int(shown.qimage.constBits()) == grey.ctypes.data
    rgba = np.zeros((10, 10, 4), np.uint8)
    assert array_qimage(rgba).qimage.format() is QImage.Format.Format_RGBA8888
    flipped = _rgb()[:, ::-1]                  # pixels not packed in a row: copied once
    shown = array_qimage(flipped)
    assert int(shown.qimage.constBits()) != flipped.ctypes.data
    assert _pixel(shown.qimage, 0, 0) == tuple(flipped[0, 0])
    with pytest.raises(ValueError, match="uint8"):
        array_qimage(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="H×W"):
        array_qimage(np.zeros((4, 4, 2), np.uint8))


def test_the_holder_keeps_the_memory_alive(qapp):
    shown = array_qimage(np.full((50, 60, 3), 77, np.uint8))   # no other reference
    gc.collect()
    assert _pixel(shown.qimage, 30, 20) == (77, 77, 77)
    assert int(shown.qimage.constBits()) == shown.array.ctypes.data


def _render(view: ImageView) -> QImage:
    return view.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)


def test_heatmap_layer_toggles_and_is_drawn_over_the_fitted_image(qtbot):
    view = ImageView()
    qtbot.addWidget(view)
    view.resize(400, 400)
    base = np.full((100, 200, 3), 128, np.uint8)          # wide: letterboxed vertically
    heat = np.zeros((16, 16), np.float32)
    heat[6:10, 2:6] = 1.0                                  # a hot spot left of centre
    view.set_image(base)
    view.set_layer(HEATMAP_LAYER, heatmap_layer(heat), opacity=0.8)
    view.show()
    qtbot.waitExposed(view)
    rect = view.image_rect()
    assert (round(rect.x()), round(rect.y()), round(rect.width()), round(rect.height())) == \
        (0, 100, 400, 200)

    hot = (int(rect.x() + rect.width() * 4 / 16), int(rect.y() + rect.height() * 8 / 16))
    cold = (int(rect.x() + rect.width() * 13 / 16), int(rect.y() + rect.height() * 3 / 16))
    outside = (200, 40)
    with_layer = _render(view)
    view.set_layer_visible(HEATMAP_LAYER, False)
    without = _render(view)
    assert _pixel(without, *hot) == (128, 128, 128)
    assert _pixel(with_layer, *hot) != (128, 128, 128)       # the overlay changed it
    assert _pixel(with_layer, *cold) == _pixel(without, *cold) == (128, 128, 128)
    assert _pixel(with_layer, *outside) == _pixel(without, *outside) != (128, 128, 128)

    view.set_layer_visible(HEATMAP_LAYER, True)
    view.set_layer_opacity(HEATMAP_LAYER, 0.0)
    assert _pixel(_render(view), *hot) == (128, 128, 128)
    view.set_layer_opacity(HEATMAP_LAYER, 0.8)
    assert _pixel(_render(view), *hot) == _pixel(with_layer, *hot)
    view.set_layer(HEATMAP_LAYER, None)
    assert view.layer(HEATMAP_LAYER) is None


def test_placeholder_without_an_image(qtbot):
    view = ImageView("No reference")
    qtbot.addWidget(view)
    view.resize(200, 200)
    assert view.image is None and view.image_rect().isEmpty()
    rendered = _render(view)
    colours = {_pixel(rendered, x, 100) for x in range(40, 160)}
    assert len(colours) > 1                                   # the text is drawn
    view.set_image(_rgb())
    assert view.image is not None
    view.clear("Item")
    assert view.image is None and view.placeholder == "Item"
