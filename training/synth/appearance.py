"""How an item looks: its undamaged sprite (colour, coverage, blister units), front or back.

The sprite is drawn at half the tray resolution on a canvas with a margin, so defects
can push material outside the outline (open flaps, separated pieces). It depends only
on the item identity and the side shown, so all of an item's captures share artwork.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from training.synth import lookalikes, textures
from training.synth.items import ItemIdentity

SPRITE_SCALE = 0.5   # sprite pixels per tray-crop pixel
MARGIN_FRACTION = 0.35


@dataclass
class ItemSprite:
    rgb: np.ndarray               # float32 (h, w, 3) in [0, 1]
    alpha: np.ndarray             # float32 (h, w) coverage
    defect: np.ndarray            # float32 (h, w) defect coverage
    body: tuple[int, int, int, int]   # x0, y0, x1, y1 of the undamaged outline
    inner_color: np.ndarray       # what the inside of the packaging looks like
    units: list[tuple[int, int, int, int]] = field(default_factory=list)  # blister cavities
    product_color: np.ndarray | None = None   # what fills a blister unit

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]


def _rounded_rect(mask: np.ndarray, box: tuple[int, int, int, int], radius: int) -> None:
    x0, y0, x1, y1 = box
    radius = max(0, min(radius, (x1 - x0) // 2, (y1 - y0) // 2))
    cv2.rectangle(mask, (x0 + radius, y0), (x1 - radius, y1), 1.0, -1)
    cv2.rectangle(mask, (x0, y0 + radius), (x1, y1 - radius), 1.0, -1)
    for cx, cy in ((x0 + radius, y0 + radius), (x1 - radius, y0 + radius),
                   (x1 - radius, y1 - radius), (x0 + radius, y1 - radius)):
        cv2.circle(mask, (cx, cy), radius, 1.0, -1, cv2.LINE_AA)


def _wobbly_outline(rng: np.random.Generator, box: tuple[int, int, int, int],
                    wobble: float) -> np.ndarray:
    """A closed polygon around a box whose edges bulge and pinch, like a soft bag."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    points = []
    for edge in range(4):
        for t in np.linspace(0, 1, 9, endpoint=False):
            offset = rng.normal(0, wobble) * min(w, h)
            if edge == 0:
                points.append((x0 + t * w, y0 - offset))
            elif edge == 1:
                points.append((x1 + offset, y0 + t * h))
            elif edge == 2:
                points.append((x1 - t * w, y1 + offset))
            else:
                points.append((x0 - offset, y1 - t * h))
    return np.array(points, np.int32)


def _box(rng, identity, back, w, h):
    material = identity.material
    if material == "cardboard":
        surface = textures.kraft_board(rng, h, w)
        if rng.random() < 0.35 and not back:   # fully printed retail carton
            surface = textures.print_artwork(rng, h, w) * (0.9 + 0.1 * surface / surface.max())
        elif rng.random() < 0.6:               # one- or two-colour print on kraft
            ink = textures.print_artwork(rng, h, w, background=np.ones(3, np.float32))
            surface = surface * (0.35 + 0.65 * ink)
        seam_y = h // 2 + int(rng.integers(-2, 3))
        cv2.line(surface, (0, seam_y), (w, seam_y), (0.3, 0.22, 0.14), max(1, h // 120))
        if rng.random() < 0.85:               # packing tape over the seam
            tape = int(h * rng.uniform(0.07, 0.13))
            band = surface[seam_y - tape // 2: seam_y + tape // 2]
            tint = np.array([0.78, 0.64, 0.42], np.float32) if rng.random() < 0.6 else band.mean((0, 1))
            band[:] = band * 0.72 + tint * 0.3
            band[:2] *= 1.12
        if back or rng.random() < 0.4:       # shipping label
            lw, lh = int(w * rng.uniform(0.25, 0.4)), int(h * rng.uniform(0.25, 0.4))
            lx, ly = int(rng.integers(4, w - lw - 4)), int(rng.integers(4, h - lh - 4))
            cv2.rectangle(surface, (lx, ly), (lx + lw, ly + lh), (0.96, 0.96, 0.95), -1)
            textures.draw_text_lines(surface, rng, (lx + 4, ly + 2, lx + lw - 4, ly + lh // 2),
                                     np.zeros(3, np.float32), max(6, lh // 9))
            textures.draw_barcode(surface, rng, (lx + 4, ly + lh // 2 + 4, lx + lw - 4, ly + lh - 4))
        return surface.clip(0, 1), np.array([0.55, 0.42, 0.28], np.float32)
    art = textures.print_artwork(rng, h, w)
    if back:
        art = textures.paper_surface(rng, h, w, art.mean((0, 1)) * 0.6 + 0.4)
        textures.draw_text_lines(art, rng, (8, 8, w - 8, h // 2), np.full(3, 0.1, np.float32),
                                 max(6, h // 25))
        textures.draw_barcode(art, rng, (w // 2, int(h * 0.65), int(w * 0.85), int(h * 0.85)))
    if material == "plastic_tight_wrap":
        art = art * 0.92 + 0.06 + textures.plastic_sheen(rng, h, w, 0.55)[..., None]
    return art.clip(0, 1), np.array([0.85, 0.85, 0.82], np.float32)


def _book(rng, identity, back, w, h):
    if identity.material == "book_other":
        cloth = textures.random_color(rng, saturation=(0.3, 0.8), value=(0.2, 0.6))
        weave = textures.smooth_noise(rng, h, w, 1.2)
        cover = cloth * (0.88 + 0.15 * weave)[..., None]
        gold = np.array([0.85, 0.7, 0.35], np.float32)
        inset = max(4, min(w, h) // 14)
        cv2.rectangle(cover, (inset, inset), (w - inset, h - inset), tuple(map(float, gold)),
                      max(1, inset // 5), cv2.LINE_AA)
        if not back:
            textures.draw_title(cover, rng, (w // 2, h // 3), int(w * 0.6), gold, 2)
    else:
        cover = textures.print_artwork(rng, h, w)
        if back:
            cover = cover * 0.3 + cover.mean((0, 1)) * 0.7
            textures.draw_text_lines(cover, rng, (w // 8, h // 8, w * 7 // 8, h * 3 // 5),
                                     np.full(3, 0.08, np.float32), max(6, h // 30))
            textures.draw_barcode(cover, rng, (w // 2, int(h * 0.72), int(w * 0.88), int(h * 0.9)))
        else:
            textures.draw_title(cover, rng, (w // 2, int(h * 0.45)), int(w * 0.75),
                                textures.random_color(rng, value=(0.8, 1.0)), 2)
    spine = max(3, w // 14)
    cover[:, :spine] *= np.linspace(0.65, 0.95, spine, dtype=np.float32)[None, :, None]
    pages = max(2, w // 80)   # page block peeking out on the three open sides
    stripes = 0.86 + 0.06 * (np.arange(pages) % 2)
    cover[:, w - pages:] = np.array([0.93, 0.9, 0.8], np.float32) * stripes[None, :, None]
    cover[:pages, spine:] = np.array([0.9, 0.87, 0.78], np.float32)
    cover[h - pages:, spine:] = np.array([0.9, 0.87, 0.78], np.float32)
    if identity.material == "book_plastic_tight_wrap":
        cover = cover * 0.93 + 0.05 + textures.plastic_sheen(rng, h, w, 0.5)[..., None]
    return cover.clip(0, 1), np.array([0.92, 0.9, 0.82], np.float32)


def _mailer(rng, back, w, h):
    palette = [np.array(c, np.float32) for c in
               ((0.93, 0.93, 0.92), (0.95, 0.86, 0.35), (0.78, 0.79, 0.8), (0.93, 0.6, 0.72),
                (0.7, 0.55, 0.38))]
    base = palette[int(rng.integers(len(palette)))]
    relief = textures.bubble_relief(rng, h, w, pitch=float(rng.uniform(6, 10)))
    surface = textures.paper_surface(rng, h, w, base) * (0.93 + 0.12 * relief)[..., None]
    surface += textures.plastic_sheen(rng, h, w, 0.25)[..., None]
    flap = int(w * 0.06)
    cv2.line(surface, (w - flap, 0), (w - flap, h), tuple(map(float, base * 0.75)), max(1, w // 200))
    if not back:
        lw, lh = int(w * 0.4), int(h * 0.35)
        lx, ly = int(w * rng.uniform(0.15, 0.45)), int(h * rng.uniform(0.15, 0.5))
        cv2.rectangle(surface, (lx, ly), (lx + lw, ly + lh), (0.97, 0.97, 0.96), -1)
        textures.draw_text_lines(surface, rng, (lx + 5, ly + 4, lx + lw - 5, ly + lh * 3 // 5),
                                 np.zeros(3, np.float32), max(6, lh // 8))
        textures.draw_barcode(surface, rng, (lx + 5, ly + lh * 3 // 5 + 2, lx + lw - 5, ly + lh - 4))
    return surface.clip(0, 1), np.array([0.85, 0.85, 0.85], np.float32)


def _envelope(rng, back, w, h):
    base = (np.array([0.95, 0.94, 0.9], np.float32) if rng.random() < 0.6
            else np.array([0.82, 0.7, 0.48], np.float32))
    surface = textures.paper_surface(rng, h, w, base)
    line = tuple(map(float, base * 0.8))
    if back:
        cv2.line(surface, (0, 0), (w // 2, int(h * 0.55)), line, max(1, w // 250), cv2.LINE_AA)
        cv2.line(surface, (w, 0), (w // 2, int(h * 0.55)), line, max(1, w // 250), cv2.LINE_AA)
    else:
        lx, ly = int(w * 0.35), int(h * 0.45)
        textures.draw_text_lines(surface, rng, (lx, ly, int(w * 0.85), int(h * 0.8)),
                                 np.full(3, 0.1, np.float32), max(6, h // 16))
        sx, sy = int(w * 0.82), int(h * 0.08)
        cv2.rectangle(surface, (sx, sy), (w - 8, sy + int(h * 0.2)),
                      tuple(map(float, textures.random_color(rng))), -1)
    return surface.clip(0, 1), base * 0.8


def _bag(rng, back, w, h):
    if rng.random() < 0.5:   # printed bag
        surface = cv2.GaussianBlur(textures.print_artwork(rng, h, w), (0, 0), 1.2)
    else:                    # clear bag over textile or goods
        fabric = textures.random_color(rng, saturation=(0.2, 0.8), value=(0.3, 0.9))
        folds = textures.fractal_noise(rng, h, w, max(w, h) / 5, 3)
        surface = fabric * (0.65 + 0.5 * folds)[..., None]
        surface = surface * 0.85 + 0.12
        if not back:
            lw, lh = int(w * 0.3), int(h * 0.22)
            lx, ly = int(w * 0.1), int(h * 0.12)
            cv2.rectangle(surface, (lx, ly), (lx + lw, ly + lh), (0.96, 0.96, 0.96), -1)
            textures.draw_barcode(surface, rng, (lx + 4, ly + lh // 3, lx + lw - 4, ly + lh - 4))
    surface = surface + textures.plastic_sheen(rng, h, w, 0.8)[..., None]
    seal = max(4, w // 25)
    for x0 in (0, w - seal):  # crimped heat seals at both ends
        band = surface[:, x0:x0 + seal]
        band[:] = band * 0.7 + 0.25
        band[::3] *= 0.92
    return surface.clip(0, 1), np.array([0.8, 0.8, 0.8], np.float32)


def _blister(rng, identity, w, h):
    card = textures.print_artwork(rng, h, w) * 0.75 + 0.22
    rows, cols = identity.unit_grid or (1, 1)
    header = int(h * 0.24)
    cv2.rectangle(card, (0, 0), (w, header), tuple(map(float, textures.random_color(rng))), -1)
    textures.draw_title(card, rng, (w // 2, header // 2), int(w * 0.5), np.full(3, 0.98, np.float32))
    product = textures.random_color(rng, saturation=(0.4, 1.0), value=(0.4, 1.0))
    cell_w, cell_h = (w * 0.9) / cols, (h - header) * 0.9 / rows
    units = []
    for r in range(rows):
        for c in range(cols):
            cx = int(w * 0.05 + (c + 0.5) * cell_w)
            cy = int(header + (h - header) * 0.05 + (r + 0.5) * cell_h)
            units.append((cx, cy, int(cell_w * 0.36), int(cell_h * 0.36)))
    return card.clip(0, 1), product, units


def draw_unit(rgb: np.ndarray, unit: tuple[int, int, int, int], product: np.ndarray | None,
              offset: tuple[int, int] = (0, 0)) -> None:
    """One blister cavity: a clear dome, with the product inside unless ``product`` is None."""
    cx, cy, rx, ry = unit
    cx, cy = cx + offset[0], cy + offset[1]
    h, w = rgb.shape[:2]
    dome = np.zeros((h, w), np.float32)
    cv2.ellipse(dome, (cx, cy), (rx, ry), 0, 0, 360, 1.0, -1, cv2.LINE_AA)
    rgb[:] = rgb * (1 - 0.18 * dome[..., None]) + 0.16 * dome[..., None]   # milky plastic
    if product is not None:
        cv2.ellipse(rgb, (cx, cy), (int(rx * 0.78), int(ry * 0.6)), 15, 0, 360,
                    tuple(map(float, product)), -1, cv2.LINE_AA)
        cv2.ellipse(rgb, (cx - rx // 5, cy - ry // 5), (max(1, rx // 4), max(1, ry // 6)), 15,
                    0, 360, tuple(map(float, np.minimum(product + 0.35, 1))), -1, cv2.LINE_AA)
    else:   # empty cavity: the shadowed backing card and a flattened dome edge
        cv2.ellipse(rgb, (cx + rx // 6, cy + ry // 6), (int(rx * 0.8), int(ry * 0.8)), 0, 0, 360,
                    (0.45, 0.45, 0.45), -1, cv2.LINE_AA)
    cv2.ellipse(rgb, (cx, cy), (rx, ry), 0, 0, 360, (0.97, 0.97, 0.97), max(1, rx // 12),
                cv2.LINE_AA)
    cv2.ellipse(rgb, (cx - rx // 3, cy - ry // 2), (max(1, rx // 3), max(1, ry // 8)), -20, 0, 360,
                (1.0, 1.0, 1.0), -1, cv2.LINE_AA)


def _round(rng, back, w, h):
    art = textures.print_artwork(rng, h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot((xx - w / 2) / (w / 2), (yy - h / 2) / (h / 2))
    metal = 0.55 + 0.35 * np.cos(r * 14) ** 2
    ring = (r > 0.86)[..., None]
    surface = np.where(ring, metal[..., None] * np.array([0.85, 0.85, 0.88], np.float32), art)
    if back:
        surface = np.where(ring, surface, metal[..., None] * 0.9)
    return surface.astype(np.float32).clip(0, 1), np.array([0.3, 0.3, 0.3], np.float32)


def _tube(rng, back, w, h):
    art = textures.print_artwork(rng, h, w)
    across = np.linspace(-1, 1, h, dtype=np.float32)
    shading = (0.55 + 0.45 * np.sqrt(1 - across ** 2))[:, None, None]
    highlight = np.exp(-((across + 0.45) / 0.08) ** 2)[:, None, None] * 0.35
    cap = int(w * 0.12)
    art[:, :cap] = textures.random_color(rng, value=(0.2, 0.9))
    return (art * shading + highlight).clip(0, 1), np.array([0.25, 0.25, 0.25], np.float32)


def render_item(identity: ItemIdentity, back_side: bool) -> ItemSprite:
    """The undamaged sprite of an item, deterministic in (identity, side)."""
    rng = np.random.default_rng([identity.artwork_seed, int(back_side)])
    w = max(16, int(identity.length_px * SPRITE_SCALE))
    h = max(16, int(identity.width_px * SPRITE_SCALE))
    margin = int(MARGIN_FRACTION * max(w, h))
    body = (margin, margin, margin + w, margin + h)
    units: list[tuple[int, int, int, int]] = []
    product = None
    shape = identity.shape
    if shape == "book":
        art, inner = _book(rng, identity, back_side, w, h)
    elif shape == "mailer":
        art, inner = _mailer(rng, back_side, w, h)
    elif shape == "envelope":
        art, inner = _envelope(rng, back_side, w, h)
    elif shape == "bag":
        art, inner = _bag(rng, back_side, w, h)
    elif shape == "round":
        art, inner = _round(rng, back_side, w, h)
    elif shape == "tube":
        art, inner = _tube(rng, back_side, w, h)
    elif shape == "blister":
        art, product, local_units = _blister(rng, identity, w, h)
        inner = np.array([0.9, 0.9, 0.88], np.float32)
        units = [(cx + margin, cy + margin, rx, ry) for cx, cy, rx, ry in local_units]
    else:
        art, inner = _box(rng, identity, back_side, w, h)
    if identity.printed_lookalike and not back_side:
        lookalikes.print_damage_artwork(art, rng, identity.printed_lookalike)
    # reflect the artwork into the margin so outlines that bulge past the body stay printed
    rgb = cv2.copyMakeBorder(np.ascontiguousarray(art, np.float32), margin, margin, margin,
                             margin, cv2.BORDER_REFLECT)
    alpha = np.zeros(rgb.shape[:2], np.float32)
    if shape == "bag":
        cv2.fillPoly(alpha, [_wobbly_outline(rng, body, 0.02)], 1.0, cv2.LINE_AA)
    elif shape == "round":
        cv2.ellipse(alpha, (margin + w // 2, margin + h // 2), (w // 2, h // 2), 0, 0, 360, 1.0,
                    -1, cv2.LINE_AA)
    elif shape == "tube":
        _rounded_rect(alpha, body, h // 2)
    elif shape in ("mailer", "envelope"):
        _rounded_rect(alpha, body, max(2, min(w, h) // 40))
    else:
        _rounded_rect(alpha, body, max(1, min(w, h) // 90))
    if shape == "blister":
        for unit in units:
            draw_unit(rgb, unit, product)
        hole_x, hole_y = margin + w // 2, margin + int(h * 0.07)
        cv2.ellipse(alpha, (hole_x, hole_y), (max(3, w // 14), max(2, h // 40)), 0, 0, 360, 0.0,
                    -1, cv2.LINE_AA)
    rgb *= textures.bevel(alpha, max(w, h) * 0.02)[..., None]
    return ItemSprite(rgb=rgb, alpha=alpha, defect=np.zeros_like(alpha), body=body,
                      inner_color=inner, units=units, product_color=product)
