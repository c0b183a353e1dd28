"""The station camera: tray scene → 4096×3000 frame, and the station's warp back to the tray crop.

Mild perspective and rotation (the camera is not perfectly square to the tray),
enclosure floor around the tray, vignetting, LED lighting gradient and exposure/white
balance variation, sensor noise. Work is done in uint8 with small gain maps upsampled,
because float passes over 12 MP frames would dominate the generator's run time.
"""

from __future__ import annotations

import cv2
import numpy as np

from engines.tray_geometry import TrayGeometry
from training.synth.scene import TRAY_SIZE
from training.synth import textures

FRAME_WIDTH, FRAME_HEIGHT = 4096, 3000
NOISE_SIGMA = 2.5
_GAIN_ONE = 128.0
_NOISE_SLACK = 1 << 20
_noise_pool: tuple[np.ndarray, np.ndarray] | None = None

# The tray's outer corners in the tray image, in the station's convention (engines.tray_geometry).
TRAY_SQUARE = TrayGeometry.from_array([[0, 0], [1, 0], [1, 1], [0, 1]], TRAY_SIZE) \
    .destination().astype(np.float32)


def _noise() -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative parts of a fixed Gaussian noise buffer, made once per process."""
    global _noise_pool
    if _noise_pool is None:
        rng = np.random.default_rng(20240613)
        count = FRAME_WIDTH * FRAME_HEIGHT * 3 + _NOISE_SLACK
        values = np.rint(rng.standard_normal(count, dtype=np.float32) * NOISE_SIGMA)
        values = values.clip(-127, 127).astype(np.int16)
        _noise_pool = (np.maximum(values, 0).astype(np.uint8),
                       np.maximum(-values, 0).astype(np.uint8))
    return _noise_pool


def tray_corners(rng: np.random.Generator) -> np.ndarray:
    """Where the tray's corners land in the frame: TL, TR, BR, BL, float32 (4, 2)."""
    for _ in range(50):
        side = rng.uniform(2550, 2850)
        center = np.array([FRAME_WIDTH / 2 + rng.uniform(-150, 150),
                           FRAME_HEIGHT / 2 + rng.uniform(-40, 40)])
        angle = np.deg2rad(rng.uniform(-4, 4))
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        square = ((TRAY_SQUARE + 0.5) / TRAY_SIZE - 0.5) * side
        corners = square @ rotation.T + center + rng.normal(0, side * 0.006, (4, 2))
        if (corners.min() >= 20 and corners[:, 0].max() <= FRAME_WIDTH - 20
                and corners[:, 1].max() <= FRAME_HEIGHT - 20):
            return corners.astype(np.float32)
    raise RuntimeError("could not place the tray inside the frame")


def _enclosure(rng: np.random.Generator) -> np.ndarray:
    """The enclosure floor and walls around the tray, at full frame size (uint8 RGB)."""
    small_w, small_h = 256, 188
    tone = rng.uniform(0.35, 0.65)
    floor = np.full((small_h, small_w, 3), tone, np.float32) * \
        np.array([1.0, 1.0, rng.uniform(0.97, 1.05)], np.float32)
    floor *= (0.9 + 0.15 * textures.fractal_noise(rng, small_h, small_w, 40, 2))[..., None]
    xx = np.linspace(-1, 1, small_w, dtype=np.float32)
    walls = np.clip((np.abs(xx) - 0.82) / 0.18, 0, 1)[None, :, None]   # side walls under the LEDs
    floor = floor * (1 - walls) + 0.85 * walls
    return cv2.resize((floor.clip(0, 1) * 255).astype(np.uint8), (FRAME_WIDTH, FRAME_HEIGHT),
                      interpolation=cv2.INTER_LINEAR)


def _cast_shadow(frame: np.ndarray, corners: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Darken the enclosure floor around the tray: the tote's walls shade the floor."""
    scale = 4
    small_w, small_h = FRAME_WIDTH // scale, FRAME_HEIGHT // scale
    offset = rng.uniform(-6, 6, 2)
    outside = np.full((small_h, small_w), 255, np.uint8)
    cv2.fillConvexPoly(outside, np.round((corners + offset) / scale).astype(np.int32), 0)
    distance = cv2.distanceTransform(outside, cv2.DIST_L2, 3)
    # A soft shadow from the tote over the floor, and a tight, deep contact shadow where
    # its wall meets the floor (distances in small pixels: ×4 in the frame).
    far_reach, far_depth = rng.uniform(8, 20), rng.uniform(0.15, 0.3)
    near_reach, near_depth = rng.uniform(2, 4), rng.uniform(0.3, 0.45)
    factor = (1.0 - far_depth * np.exp(-distance / far_reach)
              - near_depth * np.exp(-distance / near_reach))
    factor_u8 = cv2.resize(np.clip(factor * _GAIN_ONE, 0, 255).astype(np.uint8),
                           (FRAME_WIDTH, FRAME_HEIGHT), interpolation=cv2.INTER_LINEAR)
    return cv2.multiply(frame, cv2.merge([factor_u8] * 3), scale=1 / _GAIN_ONE)


def _gain_map(rng: np.random.Generator) -> np.ndarray:
    """Vignetting × lighting gradient × exposure × white balance, uint8 with 128 = gain 1."""
    small_w, small_h = 256, 188
    xx, yy = np.meshgrid(np.linspace(-1, 1, small_w, dtype=np.float32),
                         np.linspace(-0.73, 0.73, small_h, dtype=np.float32))
    falloff = rng.uniform(0.35, 0.8)
    vignette = (1 + falloff * (xx ** 2 + yy ** 2) / 1.5) ** -2
    gradient = 1 + rng.uniform(-0.08, 0.08) * xx + rng.uniform(-0.08, 0.08) * yy
    exposure = rng.uniform(0.88, 1.15)
    balance = rng.uniform(0.95, 1.05, 3).astype(np.float32)
    gain = (vignette * gradient * exposure)[..., None] * balance
    gain_u8 = np.clip(gain * _GAIN_ONE, 0, 255).astype(np.uint8)
    return cv2.resize(gain_u8, (FRAME_WIDTH, FRAME_HEIGHT), interpolation=cv2.INTER_LINEAR)


def capture_frame(tray: np.ndarray, rng: np.random.Generator,
                  corners: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Render the 4096×3000 RGB frame of a tray scene; returns (frame, corners TL,TR,BR,BL).

    ``corners`` fixes where the tray lies (one station's calibrated pose); by default every
    capture gets its own mild perspective and rotation.
    """
    corners = tray_corners(rng) if corners is None else np.asarray(corners, np.float32)
    frame = _cast_shadow(_enclosure(rng), corners, rng)
    # warp only into the tray's bounding box: most of the cost of a 12 MP warp is per pixel
    x0, y0 = np.floor(corners.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 2
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(FRAME_WIDTH, x1), min(FRAME_HEIGHT, y1)
    homography = cv2.getPerspectiveTransform(TRAY_SQUARE, corners - np.float32([x0, y0]))
    window = frame[y0:y1, x0:x1]
    cv2.warpPerspective(tray, homography, (x1 - x0, y1 - y0), dst=window,
                        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)
    frame = cv2.multiply(frame, _gain_map(rng), scale=1 / _GAIN_ONE)
    positive, negative = _noise()
    offset = int(rng.integers(0, _NOISE_SLACK))
    flat = frame.reshape(-1, 1)
    flat = cv2.add(flat, positive[offset:offset + flat.shape[0]].reshape(-1, 1))
    flat = cv2.subtract(flat, negative[offset:offset + flat.shape[0]].reshape(-1, 1))
    return flat.reshape(FRAME_HEIGHT, FRAME_WIDTH, 3), corners


def tray_crop_from_frame(frame: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """What the station computes: the frame warped back to the 2048×2048 tray square."""
    return TrayGeometry.from_array(corners, TRAY_SIZE).warp(frame)
