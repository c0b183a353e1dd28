"""The seven defect types, drawn with a per-pixel defect mask; major ones larger and harsher.

Item defects act on the item sprite (colour, coverage, mask) before it is placed on
the tray; spillage acts on the tray image, because liquid and powder run beside the item.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from training.synth import shapes, textures
from training.synth.appearance import ItemSprite, draw_unit
from training.synth.lookalikes import SPILL_COLORS


def _body_point(rng: np.random.Generator, sprite: ItemSprite, inset: float) -> tuple[float, float]:
    x0, y0, x1, y1 = sprite.body
    for _ in range(20):
        x = rng.uniform(x0 + inset * (x1 - x0), x1 - inset * (x1 - x0))
        y = rng.uniform(y0 + inset * (y1 - y0), y1 - inset * (y1 - y0))
        if sprite.alpha[int(y), int(x)] > 0.5:
            return x, y
    return (x0 + x1) / 2, (y0 + y1) / 2


def _min_side(sprite: ItemSprite) -> float:
    x0, y0, x1, y1 = sprite.body
    return float(min(x1 - x0, y1 - y0))


def _mark(sprite: ItemSprite, region: np.ndarray) -> None:
    np.maximum(sprite.defect, region.astype(np.float32), out=sprite.defect)


def penetration(sprite: ItemSprite, rng: np.random.Generator, major: bool) -> None:
    """A hole or tear showing the dark inside, with a lighter torn rim."""
    side = _min_side(sprite)
    radius = side * (rng.uniform(0.08, 0.16) if major else rng.uniform(0.025, 0.05))
    tear = rng.random() < 0.5
    center = _body_point(rng, sprite, 0.15)
    poly = shapes.jagged_polygon(rng, center, radius, 0.4, rng.uniform(2.5, 5) if tear else
                                 rng.uniform(1, 1.6), rng.uniform(0, 180))
    h, w = sprite.alpha.shape
    hole = np.zeros((h, w), np.float32)
    cv2.fillPoly(hole, [poly], 1.0, cv2.LINE_AA)
    hole *= sprite.alpha
    rim_width = max(2, int(radius * 0.18))
    rim = cv2.dilate(hole, np.ones((2 * rim_width + 1,) * 2, np.uint8)) - hole
    rim *= textures.smooth_noise(rng, h, w, max(2.0, rim_width)) > 0.35
    torn_fibre = np.minimum(sprite.rgb * 1.25 + 0.08, 1.0)
    sprite.rgb[:] = sprite.rgb * (1 - rim[..., None]) + torn_fibre * rim[..., None]
    depth = cv2.GaussianBlur(hole, (0, 0), max(1.0, radius * 0.3))
    murk = textures.smooth_noise(rng, h, w, max(2.0, radius / 3))
    inside = sprite.inner_color * (0.1 + 0.35 * (1 - depth) * (0.6 + 0.8 * murk))[..., None]
    sprite.rgb[:] = sprite.rgb * (1 - hole[..., None]) + inside * hole[..., None]
    _mark(sprite, cv2.dilate(hole, np.ones((3, 3), np.uint8)) + rim > 0.3)


def deformation(sprite: ItemSprite, rng: np.random.Generator, major: bool) -> None:
    """A dent or crushed corner: geometry pinched towards a point plus crease shading."""
    side = _min_side(sprite)
    x0, y0, x1, y1 = sprite.body
    if major and rng.random() < 0.6:   # crushed corner or edge
        center = (x0 if rng.random() < 0.5 else x1, rng.uniform(y0, y1)) if rng.random() < 0.5 \
            else (rng.uniform(x0, x1), y0 if rng.random() < 0.5 else y1)
    else:
        center = _body_point(rng, sprite, 0.2)
    radius = side * (rng.uniform(0.22, 0.38) if major else rng.uniform(0.09, 0.15))
    h, w = sprite.alpha.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = xx - center[0], yy - center[1]
    bump = np.exp(-(dx * dx + dy * dy) / (2 * radius * radius)).astype(np.float32)
    pinch = (0.3 if major else 0.12) * bump
    map_x, map_y = xx + dx * pinch, yy + dy * pinch     # sample farther out: content pulled in
    sprite.rgb[:] = cv2.remap(sprite.rgb, map_x, map_y, cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT)
    sprite.alpha[:] = cv2.remap(sprite.alpha, map_x, map_y, cv2.INTER_LINEAR)
    light = np.float32(rng.uniform(0.6, 1.0))
    shade = 1 + (1.1 if major else 0.6) * light * (np.gradient(bump, axis=1) +
                                                   np.gradient(bump, axis=0)) * radius
    creases = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(4, 8) if major else rng.integers(1, 3))):
        angle = rng.uniform(0, np.pi)
        length = radius * rng.uniform(0.6, 1.6)
        offset = rng.normal(0, radius * 0.3, 2)
        p = np.array(center) + offset
        d = np.array([np.cos(angle), np.sin(angle)]) * length / 2
        mid = p + rng.normal(0, radius * 0.1, 2)
        polyline = np.array([p - d, mid, p + d], np.int32)
        cv2.polylines(creases, [polyline], False, 1.0, max(1, int(side / 120)), cv2.LINE_AA)
    creases = cv2.GaussianBlur(creases, (0, 0), 1.0)
    ridge = np.roll(creases, 2, axis=1)
    crease_strength = 0.6 if major else 0.35
    shade = shade - crease_strength * creases + 0.6 * crease_strength * ridge
    sprite.rgb[:] = (sprite.rgb * shade[..., None]).clip(0, 1)
    moved = np.sqrt(dx * dx + dy * dy) * pinch > 1.5   # where the content visibly shifted
    _mark(sprite, ((bump > 0.35) | moved | (creases > 0.2)) & (sprite.alpha > 0.3))


def _rotate_sprite(sprite: ItemSprite, quarter_turns: int) -> ItemSprite:
    """The same sprite rotated by 90° steps, so edge effects need only handle the top edge."""
    k = quarter_turns % 4
    if k == 0:
        return sprite
    h, w = sprite.alpha.shape
    x0, y0, x1, y1 = sprite.body
    corners = np.array([[x0, y0], [x1, y1]], np.float32)
    for _ in range(k):   # np.rot90 (counter-clockwise): (x, y) -> (y, W - x)
        corners = np.stack([corners[:, 1], w - corners[:, 0]], axis=1)
        h, w = w, h
    body = (int(corners[:, 0].min()), int(corners[:, 1].min()),
            int(corners[:, 0].max()), int(corners[:, 1].max()))
    return ItemSprite(rgb=np.ascontiguousarray(np.rot90(sprite.rgb, k)),
                      alpha=np.ascontiguousarray(np.rot90(sprite.alpha, k)),
                      defect=np.ascontiguousarray(np.rot90(sprite.defect, k)), body=body,
                      inner_color=sprite.inner_color, units=[],
                      product_color=sprite.product_color)


def _restore(sprite: ItemSprite, rotated: ItemSprite, quarter_turns: int) -> None:
    k = (-quarter_turns) % 4
    sprite.rgb[:] = np.rot90(rotated.rgb, k)
    sprite.alpha[:] = np.rot90(rotated.alpha, k)
    sprite.defect[:] = np.rot90(rotated.defect, k)


def actuation(sprite: ItemSprite, rng: np.random.Generator, major: bool) -> None:
    """The item opened along one edge: a lid or flap folded out, the dark inside exposed."""
    turns = int(rng.integers(4))
    s = _rotate_sprite(sprite, turns)
    x0, y0, x1, y1 = s.body
    bw, bh = x1 - x0, y1 - y0
    span = rng.uniform(0.75, 1.0) if major else rng.uniform(0.3, 0.6)
    a = int(x0 + rng.uniform(0, 1 - span) * bw)
    b = int(a + span * bw)
    before = s.alpha.copy()
    if major:
        depth = int(bh * rng.uniform(0.2, 0.4))
        flap = s.rgb[y0:y0 + depth, a:b][::-1].copy()    # flap folds outward, inside up
        inner_side = s.inner_color * (0.75 + 0.2 * textures.smooth_noise(
            rng, depth, b - a, max(4.0, depth / 3)))[..., None]
        flap = flap * 0.25 + inner_side * 0.75
        flap_len = min(int(depth * rng.uniform(0.6, 0.95)), y0)
        flap = cv2.resize(flap, (b - a, max(1, flap_len)))
        flap *= np.linspace(0.8, 1.0, flap.shape[0], dtype=np.float32)[::-1, None, None]
        s.rgb[y0 - flap.shape[0]:y0, a:b] = flap
        s.alpha[y0 - flap.shape[0]:y0, a:b] = 1.0
        gradient = np.linspace(0.1, 0.45, depth, dtype=np.float32)[::-1][:, None, None]
        interior = s.inner_color * gradient
        if rng.random() < 0.6:   # contents showing
            blob = textures.smooth_noise(rng, depth, b - a, max(4.0, depth / 2))[..., None]
            interior = interior * (0.6 + 0.8 * blob)
        s.rgb[y0:y0 + depth, a:b] = interior
        cv2.line(s.rgb, (a, y0), (b, y0), (0.1, 0.08, 0.06), max(1, bh // 100))
        changed = np.zeros_like(s.alpha)
        changed[y0 - flap.shape[0]:y0 + depth, a:b] = 1.0
    else:
        gap = max(2, int(bh * rng.uniform(0.015, 0.04)))
        lift = max(2, int(bh * rng.uniform(0.02, 0.05)))
        strip = s.rgb[y0:y0 + gap * 4, a:b].copy()
        s.rgb[y0 - lift:y0 - lift + strip.shape[0], a:b] = strip * 1.05
        s.alpha[y0 - lift:y0, a:b] = 1.0
        s.rgb[y0 - lift + strip.shape[0]:y0 - lift + strip.shape[0] + gap, a:b] = \
            s.inner_color * 0.15
        changed = np.zeros_like(s.alpha)
        changed[y0 - lift:y0 - lift + strip.shape[0] + gap, a:b] = 1.0
    s.alpha[:] = np.clip(s.alpha, 0, 1)
    _mark(s, (changed > 0) | (np.abs(s.alpha - before) > 0.5))
    _restore(sprite, s, turns)


def deconstruction(sprite: ItemSprite, rng: np.random.Generator, major: bool) -> None:
    """The item coming apart: a piece split off along a ragged cut and moved away."""
    h, w = sprite.alpha.shape
    x0, y0, x1, y1 = sprite.body
    side = _min_side(sprite)
    angle = rng.uniform(0, np.pi)
    normal = np.array([np.cos(angle), np.sin(angle)])
    center = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    extent = abs(normal[0]) * (x1 - x0) / 2 + abs(normal[1]) * (y1 - y0) / 2
    cut_at = center + normal * extent * rng.uniform(0.15, 0.6)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ragged = (textures.smooth_noise(rng, h, w, side / 10) - 0.5) * side * 0.08
    distance = (xx - cut_at[0]) * normal[0] + (yy - cut_at[1]) * normal[1] + ragged
    piece = (distance > 0).astype(np.float32) * sprite.alpha
    shift = side * (rng.uniform(0.12, 0.28) if major else rng.uniform(0.02, 0.045))
    turn = rng.uniform(-12, 12) if major else rng.uniform(-2, 2)
    piece_center = cut_at + normal * extent * 0.3
    matrix = cv2.getRotationMatrix2D(tuple(map(float, piece_center)), turn, 1.0)
    matrix[:, 2] += normal * shift
    moved_rgb = cv2.warpAffine(sprite.rgb * piece[..., None], matrix, (w, h))
    moved_alpha = cv2.warpAffine(piece, matrix, (w, h))
    rest_alpha = sprite.alpha * (1 - piece)
    edge = cv2.dilate((piece > 0.5).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(
        np.float32) * rest_alpha
    rest_rgb = sprite.rgb * (1 - edge[..., None]) + sprite.inner_color * 0.3 * edge[..., None]
    before = sprite.alpha.copy()
    new_alpha = np.clip(rest_alpha + moved_alpha, 0, 1)
    sprite.rgb[:] = rest_rgb * (1 - moved_alpha[..., None]) + moved_rgb
    sprite.alpha[:] = new_alpha
    cut_band = np.abs(distance) < max(3.0, shift + side * 0.03)
    if major:   # a few loose fragments beside the item
        for _ in range(int(rng.integers(1, 4))):
            spot = cut_at + normal * extent * rng.uniform(0.6, 1.2) + rng.normal(0, side * 0.1, 2)
            poly = shapes.jagged_polygon(rng, tuple(spot), side * rng.uniform(0.02, 0.05), 0.4)
            fragment = np.zeros((h, w), np.float32)
            cv2.fillPoly(fragment, [poly], 1.0, cv2.LINE_AA)
            sprite.rgb[:] = sprite.rgb * (1 - fragment[..., None]) + \
                sprite.inner_color * 0.9 * fragment[..., None]
            sprite.alpha[:] = np.maximum(sprite.alpha, fragment)
            _mark(sprite, fragment > 0.3)
    _mark(sprite, (np.abs(sprite.alpha - before) > 0.5) |
          (cut_band & ((before > 0.5) | (sprite.alpha > 0.5))) |
          ((moved_alpha > 0.5) if major else False))


def superficial(sprite: ItemSprite, rng: np.random.Generator, major: bool) -> None:
    """Scratches, scuffs and dirt on the surface; the shape is untouched."""
    h, w = sprite.alpha.shape
    side = _min_side(sprite)
    strokes = np.zeros((h, w), np.float32)
    center = np.array(_body_point(rng, sprite, 0.15))
    spread = side * (0.3 if major else 0.12)
    for _ in range(int(rng.integers(6, 16) if major else rng.integers(2, 5))):
        start = center + rng.normal(0, spread, 2)
        direction = rng.normal(0, 1, 2)
        direction /= np.linalg.norm(direction) + 1e-6
        length = side * rng.uniform(0.05, 0.25)
        bend = rng.normal(0, length * 0.1, 2)
        pts = np.array([start, start + direction * length / 2 + bend, start + direction * length])
        cv2.polylines(strokes, [pts.astype(np.int32)], False, float(rng.uniform(0.5, 1)), 1,
                      cv2.LINE_AA)
    opacity = rng.uniform(0.5, 0.8) if major else rng.uniform(0.3, 0.5)
    tone = 0.95 if rng.random() < 0.6 else 0.15
    paint = strokes * opacity
    if major and rng.random() < 0.6:   # a dirt smudge
        dirt = np.zeros((h, w), np.float32)
        poly = shapes.jagged_polygon(rng, tuple(center), side * rng.uniform(0.08, 0.18), 0.2, 1.5,
                                     rng.uniform(0, 180))
        cv2.fillPoly(dirt, [poly], 1.0)
        dirt = cv2.GaussianBlur(dirt, (0, 0), side * 0.02) * \
            (0.4 + 0.6 * textures.smooth_noise(rng, h, w, side / 20)) * 0.6
        sprite.rgb[:] = sprite.rgb * (1 - dirt[..., None]) + \
            np.array([0.3, 0.24, 0.16], np.float32) * dirt[..., None]
        paint = np.maximum(paint, 0)
        strokes = np.maximum(strokes, (dirt > 0.15).astype(np.float32))
    paint *= sprite.alpha
    sprite.rgb[:] = sprite.rgb * (1 - paint[..., None]) + tone * paint[..., None]
    _mark(sprite, (cv2.dilate(strokes, np.ones((5, 5), np.uint8)) > 0.2) & (sprite.alpha > 0.5))


def missing_unit(sprite: ItemSprite, rng: np.random.Generator, major: bool) -> None:
    """One blister unit gone: an empty cavity (major: its foil torn open too)."""
    if not sprite.units:
        raise ValueError("missing_unit needs an item with repeated units")
    cx, cy, rx, ry = sprite.units[int(rng.integers(len(sprite.units)))]
    ring = sprite.rgb[max(0, cy - ry - 6):cy + ry + 6, max(0, cx - rx - 6):cx + rx + 6]
    card = np.median(ring.reshape(-1, 3), axis=0)
    cv2.ellipse(sprite.rgb, (cx, cy), (rx + 1, ry + 1), 0, 0, 360, tuple(map(float, card)), -1)
    draw_unit(sprite.rgb, (cx, cy, rx, ry), None)
    region = np.zeros_like(sprite.alpha)
    cv2.ellipse(region, (cx, cy), (rx + 3, ry + 3), 0, 0, 360, 1.0, -1)
    if major:
        poly = shapes.jagged_polygon(rng, (cx, cy), min(rx, ry) * 0.6, 0.45)
        cv2.fillPoly(sprite.rgb, [poly], (0.12, 0.1, 0.1), cv2.LINE_AA)
        cv2.polylines(sprite.rgb, [poly], True, (0.85, 0.85, 0.88), 1, cv2.LINE_AA)
    _mark(sprite, region > 0.5)


ITEM_DEFECTS: dict[str, Callable[[ItemSprite, np.random.Generator, bool], None]] = {
    "penetration": penetration, "deformation": deformation, "actuation": actuation,
    "deconstruction": deconstruction, "superficial": superficial, "missing_unit": missing_unit,
}


def spillage(tray: np.ndarray, item_alpha: np.ndarray, defect: np.ndarray,
             rng: np.random.Generator, major: bool) -> None:
    """Liquid or powder from the item, running onto the tray beside it (in place, tray space)."""
    h, w = item_alpha.shape
    outline = cv2.Canny((item_alpha > 0.5).astype(np.uint8) * 255, 50, 150)
    ys, xs = np.nonzero(outline)
    if len(xs) == 0:
        return
    pick = int(rng.integers(len(xs)))
    edge = np.array([xs[pick], ys[pick]], np.float32)
    moments = cv2.moments((item_alpha > 0.5).astype(np.uint8), binaryImage=True)
    centroid = np.array([moments["m10"], moments["m01"]]) / max(moments["m00"], 1)
    outward = edge - centroid
    outward /= np.linalg.norm(outward) + 1e-6
    radius = rng.uniform(110, 240) if major else rng.uniform(35, 70)
    center = edge + outward * radius * rng.uniform(0.3, 0.7)
    pad = int(radius * 2.2)
    bx0, by0 = max(0, int(center[0]) - pad), max(0, int(center[1]) - pad)
    bx1, by1 = min(w, int(center[0]) + pad), min(h, int(center[1]) + pad)
    local = (center[0] - bx0, center[1] - by0)
    mask = shapes.splash_mask(rng, by1 - by0, bx1 - bx0, local, radius,
                              int(rng.integers(3, 12)),
                              float(np.degrees(np.arctan2(outward[1], outward[0]))))
    roi = tray[by0:by1, bx0:bx1]
    if rng.random() < 0.7:   # liquid: a translucent stain with a glossy rim
        color = np.array(SPILL_COLORS[int(rng.integers(len(SPILL_COLORS)))], np.float32)
        opacity = rng.uniform(0.55, 0.85) if major else rng.uniform(0.35, 0.6)
        stain = mask[..., None] * opacity
        roi[:] = roi * (1 - stain) + (0.4 * roi + 0.6 * color) * stain
        rim = np.clip(mask - cv2.erode(mask, np.ones((5, 5), np.uint8)), 0, 1)
        roi[:] = roi + 0.25 * rim[..., None]
    else:                    # powder: granular, lighter, sparser towards the edge
        grains = (rng.random(mask.shape, dtype=np.float32) < mask * 0.7).astype(np.float32)
        grains = cv2.GaussianBlur(grains, (0, 0), 0.8) + 0.4 * mask
        tone = np.array(SPILL_COLORS[-1], np.float32) * rng.uniform(0.9, 1.05)
        cover = np.clip(grains, 0, 1)[..., None] * (0.85 if major else 0.6)
        roi[:] = roi * (1 - cover) + tone * cover
    np.clip(roi, 0, 1, out=roi)
    region = defect[by0:by1, bx0:bx1]
    np.maximum(region, (mask > 0.25).astype(np.float32), out=region)
