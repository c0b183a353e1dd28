"""Tray warp, per-frame alignment check, and item crop / quality gates."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engines import quality_gates as gates
from engines.item_crop import cut_square, item_box, square_item_crop
from engines.tray_alignment import TrayMoved, measure_alignment, verify_alignment
from engines.tray_geometry import TrayGeometry, mean_corner_error

CORNERS = [[650.0, 180.0], [3450.0, 230.0], [3400.0, 2850.0], [700.0, 2800.0]]


def plain_tray(size: int = 2048) -> np.ndarray:
    tray = np.full((size, size, 3), 190, np.uint8)
    cv2.rectangle(tray, (0, 0), (size - 1, size - 1), (140, 140, 150), size // 25)
    cv2.circle(tray, (size // 2, size // 2), size // 6, (60, 90, 160), -1)
    return tray


def frame_of(tray: np.ndarray, geometry: TrayGeometry, seed: int = 0) -> np.ndarray:
    frame = np.full((3000, 4096, 3), 70, np.uint8)
    cv2.warpPerspective(tray, np.linalg.inv(geometry.homography), (4096, 3000), dst=frame,
                        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)
    noise = np.random.default_rng(seed).normal(0, 3, frame.shape)
    return np.clip(frame + noise, 0, 255).astype(np.uint8)


def test_corners_must_be_a_clockwise_convex_quad():
    with pytest.raises(ValueError, match="convex quadrilateral"):
        TrayGeometry.from_array([CORNERS[1], CORNERS[0], CORNERS[2], CORNERS[3]])
    with pytest.raises(ValueError, match="four finite"):
        TrayGeometry.from_array(CORNERS[:3])


def test_corners_map_to_the_outer_edges_of_the_tray_image():
    geometry = TrayGeometry.from_array(CORNERS)
    mapped = geometry.tray_points(np.array(CORNERS))
    np.testing.assert_allclose(mapped, [[-0.5, -0.5], [2047.5, -0.5], [2047.5, 2047.5],
                                        [-0.5, 2047.5]], atol=1e-6)
    np.testing.assert_allclose(geometry.frame_points(mapped), CORNERS, atol=1e-6)


def test_warp_round_trip_reproduces_the_tray_image():
    tray = plain_tray()
    geometry = TrayGeometry.from_array(CORNERS)
    warped = geometry.warp(frame_of(tray, geometry))
    assert warped.shape == (2048, 2048, 3)
    # Bilinear in, bilinear out, plus noise: away from sharp edges the image comes back.
    inner = (slice(100, -100), slice(100, -100))
    error = np.abs(warped[inner].astype(int) - tray[inner].astype(int))
    assert np.median(error) <= 3
    assert np.mean(error) < 6


def test_mean_corner_error_is_in_tray_pixels():
    truth = TrayGeometry.from_array(CORNERS)
    shifted = TrayGeometry.from_array(np.array(CORNERS) + [truth.pixel_size_ratio() * 3, 0])
    assert mean_corner_error(shifted, truth) == pytest.approx(3.0, rel=1e-6)


def test_alignment_accepts_the_calibrated_tray_and_rejects_a_moved_one():
    geometry = TrayGeometry.from_array(CORNERS)
    frame = frame_of(plain_tray(), geometry)
    alignment = verify_alignment(frame, geometry)
    assert alignment.score > 0.9
    assert all(abs(offset) < 1.0 for offset in alignment.side_offsets_px.values())

    bumped = TrayGeometry.from_array(np.array(CORNERS) + [25.0, 0.0])
    measured = measure_alignment(frame, bumped)
    assert not measured.aligned
    # The frame's rim is 25 frame px left of the bumped outline: right side moved inward.
    assert measured.side_offsets_px["right"] < -10
    with pytest.raises(TrayMoved, match="tray moved — recalibrate geometry"):
        verify_alignment(frame, bumped)


def test_alignment_rejects_a_frame_with_no_tray():
    geometry = TrayGeometry.from_array(CORNERS)
    empty = np.full((3000, 4096, 3), 70, np.uint8)
    with pytest.raises(TrayMoved):
        verify_alignment(empty, geometry)


def test_item_crop_is_square_with_ten_percent_padding():
    mask = np.zeros((2048, 2048), np.uint8)
    mask[500:700, 800:1200] = 255  # 400 wide, 200 tall
    box = item_box(mask)
    assert box.side == 480
    assert (box.x, box.y) == (760, 360)
    image = np.arange(2048 * 2048, dtype=np.uint32).reshape(2048, 2048)
    crop, _ = square_item_crop(image, mask)
    assert crop.shape == (480, 480)
    assert crop[0, 0] == image[360, 760]


def test_item_crop_pads_past_the_tray_edge():
    image = np.full((100, 100, 3), 7, np.uint8)
    image[:, 0] = 200
    crop = cut_square(image, item_box(np.pad(np.ones((20, 20)), ((0, 80), (0, 80)))))
    assert crop.shape == (24, 24, 3)
    assert (crop[:, 0] == 200).all()  # replicated border, not black


def disc_mask(centre: tuple[int, int], radius: int, size: int = 2048) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    cv2.circle(mask, centre, radius, 255, -1)
    return mask


@pytest.mark.parametrize("mask, expected", [
    (disc_mask((1024, 1024), 300), set()),
    (np.zeros((2048, 2048), np.uint8), {gates.NO_ITEM}),
    (disc_mask((1024, 1024), 20), {gates.NO_ITEM}),
    (disc_mask((600, 1024), 250) | disc_mask((1500, 1024), 250), {gates.SEVERAL_ITEMS}),
    (disc_mask((1024, 1024), 300) | disc_mask((1800, 300), 8), set()),  # dust is not an item
    (disc_mask((1024, 330), 300), {gates.ITEM_CUT}),
    (disc_mask((380, 1024), 200), {gates.OFF_CENTRE}),
])
def test_item_mask_gates(mask, expected):
    issues = gates.check_item_mask(mask)
    assert {issue.code for issue in issues} == expected
    assert all(issue.message.endswith(".") and len(issue.message) > 30 for issue in issues)


def test_exposure_gates():
    tray = plain_tray(256)
    assert gates.check_exposure(tray) == []
    assert [i.code for i in gates.check_exposure(np.full_like(tray, 255))] == [gates.OVER_EXPOSED]
    assert [i.code for i in gates.check_exposure(tray // 8)] == [gates.UNDER_EXPOSED]
