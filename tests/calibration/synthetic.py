"""Small synthetic station frames with known truth, for the calibration steps' tests.

A tray (lit rim, textured or plain floor) in a dark enclosure at known corners, drawn
with exact sub-pixel edges (coverage by 4x supersampling); optional grey card at known
corners, defocus blur, vignetting of known fall-off, colour cast, exposure and noise.
Frames are small (default 960 x 720) so the tests stay fast; the geometry conventions
are the station's (``engines.tray_geometry``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engines.tray_geometry import TrayGeometry

WIDTH, HEIGHT = 960, 720
# Tray corners (top-left, top-right, bottom-right, bottom-left), mild rotation/perspective.
TRAY_CORNERS = np.array([[168.4, 62.7], [806.2, 78.3], [792.9, 668.5], [155.1, 651.8]])
# A grey card lying in the tray, slightly rotated.
CARD_CORNERS = np.array([[402.3, 281.6], [561.7, 290.2], [554.4, 431.9], [395.0, 423.3]])
RIM_TRAY_PX = 60           # rim width in tray-image pixels (2048 scale)
ENCLOSURE, RIM, FLOOR = 38.0, 205.0, 150.0
SUPERSAMPLE = 4


def coverage(shape: tuple[int, int], corners: np.ndarray) -> np.ndarray:
    """Fraction (0..1) of each pixel inside the quad, pixel centres at integer coordinates."""
    height, width = shape
    big = np.zeros((height * SUPERSAMPLE, width * SUPERSAMPLE), np.uint8)
    points = (np.asarray(corners) + 0.5) * SUPERSAMPLE - 0.5
    cv2.fillConvexPoly(big, np.round(points * 16).astype(np.int32), 255, cv2.LINE_8, shift=4)
    return cv2.resize(big, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def vignetting(shape: tuple[int, int], strength: float) -> np.ndarray:
    """Relative illumination (1 + k r^2)^-2 with r^2 = u^2 + v^2, u, v in [-1, 1] over the
    frame (pixel centres), as the station's flat field normalises coordinates."""
    height, width = shape
    u = (np.arange(width) + 0.5) / width * 2 - 1
    v = (np.arange(height) + 0.5) / height * 2 - 1
    r2 = u[None, :] ** 2 + v[:, None] ** 2
    return ((1 + strength * r2) ** -2).astype(np.float32)


def vignetting_at(points: np.ndarray, shape: tuple[int, int], strength: float) -> np.ndarray:
    height, width = shape
    points = np.asarray(points, np.float64).reshape(-1, 2)
    u = (points[:, 0] + 0.5) / width * 2 - 1
    v = (points[:, 1] + 0.5) / height * 2 - 1
    return (1 + strength * (u ** 2 + v ** 2)) ** -2


def rim_inner_corners(corners: np.ndarray = TRAY_CORNERS, rim: int = RIM_TRAY_PX) -> np.ndarray:
    geometry = TrayGeometry.from_array(corners)
    inner = np.array([[rim, rim], [2047 - rim, rim], [2047 - rim, 2047 - rim],
                      [rim, 2047 - rim]], np.float64)
    return geometry.frame_points(inner)


@dataclass
class Scene:
    """Linear scene radiance (float, 0..255 at exposure 1), before the camera."""

    radiance: np.ndarray
    tray_corners: np.ndarray
    card_corners: np.ndarray | None


def scene(width: int = WIDTH, height: int = HEIGHT, corners: np.ndarray = TRAY_CORNERS,
          textured: bool = True, card: bool = False, card_level: float = 110.0,
          floor: float = FLOOR, seed: int = 0) -> Scene:
    shape = (height, width)
    outer = coverage(shape, corners)
    inner = coverage(shape, rim_inner_corners(corners))
    floor_map = np.full(shape, floor, np.float32)
    if textured:
        rng = np.random.default_rng(seed)
        detail = cv2.GaussianBlur(rng.normal(0, 1, shape).astype(np.float32), (0, 0), 1.2)
        floor_map += 60 * detail / detail.std()
    gray = ENCLOSURE * (1 - outer) + RIM * (outer - inner) + floor_map * inner
    radiance = np.repeat(gray[..., None], 3, axis=2)
    card_corners = None
    if card:
        card_corners = CARD_CORNERS.copy()
        cover = coverage(shape, card_corners)[..., None]
        radiance = radiance * (1 - cover) + card_level * cover
    return Scene(radiance, np.asarray(corners, np.float64), card_corners)


def capture(radiance: np.ndarray, *, exposure: float = 1.0, cast=(1.0, 1.0, 1.0),
            white_balance=(1.0, 1.0, 1.0), vignette: float = 0.0, blur_sigma: float = 0.0,
            noise: float = 1.0, seed: int = 1) -> np.ndarray:
    """What the camera delivers: lens blur and vignetting, then the light's colour cast,
    exposure and the camera's white-balance gains, sensor noise, 8-bit clipping."""
    image = radiance.astype(np.float32)
    if blur_sigma > 0:
        image = cv2.GaussianBlur(image, (0, 0), blur_sigma)
    if vignette:
        image = image * vignetting(image.shape[:2], vignette)[..., None]
    gains = np.asarray(cast, np.float32) * np.asarray(white_balance, np.float32) * exposure
    image = image * gains
    if noise:
        image = image + np.random.default_rng(seed).normal(0, noise, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def tray_frame(**options) -> np.ndarray:
    """A textured tray frame at TRAY_CORNERS (capture options pass through)."""
    scene_options = {key: options.pop(key) for key in
                     ("width", "height", "corners", "textured", "card", "seed")
                     if key in options}
    return capture(scene(**scene_options).radiance, **options)
