"""One tray scene at 2048×2048: tray with rim, look-alikes, item in a random pose, shadow, defects.

Returns the tray image as the camera would see it if it looked straight down, plus the
item mask and defect mask in the same coordinates; ``camera`` then makes the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from training.synth import defects, lookalikes, textures
from training.synth.appearance import SPRITE_SCALE, render_item
from training.synth.items import ItemIdentity
from training.synth.plan import CaptureSpec

TRAY_SIZE = 2048
RIM_PX = 110          # rim top plus inner wall, as seen from above
FLOOR_MARGIN_PX = 40  # keep items this far from the inner wall

TRAY_COLORS = ((0.42, 0.43, 0.45), (0.25, 0.26, 0.28), (0.2, 0.33, 0.55), (0.58, 0.59, 0.6),
               (0.12, 0.12, 0.13))


@dataclass
class SceneRender:
    tray: np.ndarray          # uint8 RGB (2048, 2048, 3)
    item_mask: np.ndarray     # uint8 0/255
    defect_mask: np.ndarray   # uint8 0/255, all zero when non-defective


def render_tray(rng: np.random.Generator) -> np.ndarray:
    """A plastic tote seen from above: lit rim, shaded inner wall, floor with soft corners."""
    small = 512
    scale = small / TRAY_SIZE
    color = np.array(TRAY_COLORS[int(rng.integers(len(TRAY_COLORS)))], np.float32)
    color = color * rng.uniform(0.92, 1.08)
    yy, xx = np.mgrid[0:small, 0:small].astype(np.float32) + 0.5
    edge_distance = np.minimum(np.minimum(xx, small - xx), np.minimum(yy, small - yy)) / scale
    rim_top = RIM_PX * 0.45
    shade = np.where(edge_distance < rim_top, 1.12 - 0.1 * (edge_distance / rim_top),
                     np.where(edge_distance < RIM_PX,
                              0.7 + 0.25 * (edge_distance - rim_top) / (RIM_PX - rim_top),
                              1.0 - 0.12 * np.exp(-(edge_distance - RIM_PX) / 60.0)))
    mottle = 0.96 + 0.06 * textures.fractal_noise(rng, small, small, 120, 3)
    tray = cv2.convertScaleAbs(color * (shade * mottle)[..., None], alpha=255)
    # 8-bit upsampling is several times faster than float here; the camera quantises anyway
    tray = cv2.resize(tray, (TRAY_SIZE, TRAY_SIZE), interpolation=cv2.INTER_LINEAR)
    # The moulded outer lip catches the LED light: a crisp bright band along the outer edge,
    # drawn at full resolution because the tote's outline is what calibration locks onto.
    band = int(rng.integers(6, 14))
    glint = int(rng.uniform(60, 100))
    for edge in (np.s_[:band], np.s_[-band:], np.s_[:, :band], np.s_[:, -band:]):
        tray[edge] = cv2.add(tray[edge], glint)
    return tray.astype(np.float32) * np.float32(1 / 255)


def _placement(rng: np.random.Generator, sprite_size: tuple[int, int],
               body: tuple[int, int, int, int]) -> np.ndarray:
    """Affine sprite→tray: scale up, random rotation, random position with the body on the floor."""
    x0, y0, x1, y1 = body
    body_center = ((x0 + x1) / 2, (y0 + y1) / 2)
    angle = rng.uniform(0, 360)
    matrix = cv2.getRotationMatrix2D(body_center, angle, 1 / SPRITE_SCALE)
    corners = np.array([[x0, y0, 1], [x1, y0, 1], [x1, y1, 1], [x0, y1, 1]], np.float64)
    placed = corners @ matrix.T
    half_w = (placed[:, 0].max() - placed[:, 0].min()) / 2
    half_h = (placed[:, 1].max() - placed[:, 1].min()) / 2
    low = RIM_PX + FLOOR_MARGIN_PX
    high = TRAY_SIZE - low
    cx_low, cx_high = low + half_w, high - half_w
    cy_low, cy_high = low + half_h, high - half_h
    cx = rng.uniform(cx_low, cx_high) if cx_high > cx_low else TRAY_SIZE / 2
    cy = rng.uniform(cy_low, cy_high) if cy_high > cy_low else TRAY_SIZE / 2
    now = np.array([body_center[0], body_center[1], 1.0]) @ matrix.T
    matrix[:, 2] += (cx - now[0], cy - now[1])
    return matrix


def render_scene(identity: ItemIdentity, spec: CaptureSpec,
                 rng: np.random.Generator) -> SceneRender:
    """Draw one capture's tray scene from its plan."""
    tray = render_tray(rng)
    lookalikes.draw_tray_lookalikes(tray, rng, spec.tray_lookalikes)
    sprite = render_item(identity, spec.back_side)
    # pose and light before defects: a capture with and without damage differ only there
    matrix = _placement(rng, sprite.size, sprite.body)
    light = rng.uniform(0, 2 * np.pi)
    for defect in spec.defects:
        if defect.type in defects.ITEM_DEFECTS:
            defects.ITEM_DEFECTS[defect.type](sprite, rng, defect.severity == "major")

    # warp only the sprite's covered part, onto only the tray region it lands on
    bx, by, bw, bh = cv2.boundingRect((sprite.alpha > 0.004).astype(np.uint8))
    bx, by = max(0, bx - 2), max(0, by - 2)
    bw, bh = min(sprite.size[0] - bx, bw + 4), min(sprite.size[1] - by, bh + 4)
    matrix[:, 2] += matrix[:, :2] @ np.array([bx, by], np.float64)
    sprite_rgb = sprite.rgb[by:by + bh, bx:bx + bw]
    sprite_alpha = sprite.alpha[by:by + bh, bx:bx + bw]
    sprite_defect = sprite.defect[by:by + bh, bx:bx + bw]
    outline = np.array([[0, 0, 1], [bw, 0, 1], [bw, bh, 1], [0, bh, 1]], np.float64) @ matrix.T
    shadow_reach = 40 + identity.height_px
    rx0 = max(0, int(outline[:, 0].min()) - shadow_reach)
    ry0 = max(0, int(outline[:, 1].min()) - shadow_reach)
    rx1 = min(TRAY_SIZE, int(outline[:, 0].max()) + shadow_reach)
    ry1 = min(TRAY_SIZE, int(outline[:, 1].max()) + shadow_reach)
    local = matrix.copy()
    local[:, 2] -= (rx0, ry0)
    size = (rx1 - rx0, ry1 - ry0)
    rgb = cv2.warpAffine(sprite_rgb, local, size, flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(sprite_alpha, local, size, flags=cv2.INTER_LINEAR)
    defect_local = cv2.warpAffine(sprite_defect, local, size, flags=cv2.INTER_LINEAR)

    # soft shadow: blurred coverage shifted away from the lights, plus a tight contact shadow
    roi = tray[ry0:ry1, rx0:rx1]
    small = cv2.resize(alpha, (max(1, size[0] // 4), max(1, size[1] // 4)),
                       interpolation=cv2.INTER_AREA)
    blur = max(2.0, identity.height_px / 12)
    soft = cv2.GaussianBlur(small, (0, 0), blur)
    shift = identity.height_px * 0.2 / 4
    soft = cv2.warpAffine(soft, np.float32([[1, 0, np.cos(light) * shift],
                                            [0, 1, np.sin(light) * shift]]), small.shape[::-1])
    soft = cv2.resize(soft, size, interpolation=cv2.INTER_LINEAR)
    contact = cv2.GaussianBlur(alpha, (0, 0), 3)
    darkness = np.clip(0.5 * soft + 0.25 * contact, 0, 0.7)
    # in place: roi = roi * (1 - darkness) * (1 - alpha) + rgb * alpha
    np.multiply(roi, ((1 - darkness) * (1 - alpha))[..., None], out=roi)
    np.multiply(rgb, alpha[..., None], out=rgb)
    np.add(roi, rgb, out=roi)

    item_alpha = np.zeros((TRAY_SIZE, TRAY_SIZE), np.float32)
    item_alpha[ry0:ry1, rx0:rx1] = alpha
    defect_map = np.zeros((TRAY_SIZE, TRAY_SIZE), np.float32)
    defect_map[ry0:ry1, rx0:rx1] = defect_local
    for defect in spec.defects:
        if defect.type == "spillage":
            defects.spillage(tray, item_alpha, defect_map, rng, defect.severity == "major")

    def binary(values: np.ndarray) -> np.ndarray:
        return cv2.threshold(values, 0.5, 255, cv2.THRESH_BINARY)[1].astype(np.uint8)

    return SceneRender(tray=cv2.convertScaleAbs(tray, alpha=255),
                       item_mask=binary(item_alpha), defect_mask=binary(defect_map))
