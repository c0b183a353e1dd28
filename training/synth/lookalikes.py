"""Benign look-alikes, labelled non-defective: printed holes and spills, tray stickers, scuffs, dust.

They are what makes a defect detector fail in the real data (damage-like artwork,
stickers/dirt on trays), so they are drawn with the same shapes as real damage.
"""

from __future__ import annotations

import cv2
import numpy as np

from training.synth import shapes, textures

SPILL_COLORS = ((0.36, 0.2, 0.08), (0.85, 0.45, 0.05), (0.5, 0.05, 0.12), (0.15, 0.35, 0.8),
                (0.9, 0.88, 0.82))


def print_damage_artwork(art: np.ndarray, rng: np.random.Generator, kind: str) -> None:
    """Print a flat hole or splash graphic into an item's artwork (in place)."""
    h, w = art.shape[:2]
    side = min(h, w)
    center = (w * rng.uniform(0.25, 0.75), h * rng.uniform(0.25, 0.75))
    if kind == "printed_hole":
        radius = side * rng.uniform(0.06, 0.14)
        poly = shapes.jagged_polygon(rng, center, radius, 0.35, rng.uniform(1, 2.5),
                                     rng.uniform(0, 180))
        rim = np.zeros((h, w), np.uint8)
        cv2.fillPoly(rim, [poly], 1)
        rim = cv2.dilate(rim, np.ones((5, 5), np.uint8)).astype(bool)
        art[rim] = np.array([0.92, 0.86, 0.72], np.float32)    # printed "torn paper" rim
        cv2.fillPoly(art, [poly], (0.08, 0.06, 0.05), cv2.LINE_AA)
    else:
        radius = side * rng.uniform(0.1, 0.22)
        splash = shapes.splash_mask(rng, h, w, center, radius, int(rng.integers(4, 12)))
        color = np.array(SPILL_COLORS[int(rng.integers(len(SPILL_COLORS)))], np.float32)
        art[:] = art * (1 - splash[..., None]) + color * splash[..., None]


def _sticker(tray: np.ndarray, rng: np.random.Generator) -> None:
    h, w = tray.shape[:2]
    sw, sh = int(rng.uniform(90, 260)), int(rng.uniform(60, 170))
    label = np.zeros((sh, sw, 3), np.float32)
    label[:] = (0.96, 0.96, 0.94) if rng.random() < 0.6 else (0.98, 0.85, 0.2)
    if rng.random() < 0.5:
        textures.draw_barcode(label, rng, (6, sh // 2, sw - 6, sh - 6))
    textures.draw_text_lines(label, rng, (6, 2, sw - 6, sh // 2), np.full(3, 0.1, np.float32),
                             max(8, sh // 7))
    coverage = np.ones((sh, sw), np.float32)
    angle = rng.uniform(0, 360)
    cx, cy = rng.uniform(200, w - 200), rng.uniform(200, h - 200)
    matrix = cv2.getRotationMatrix2D((sw / 2, sh / 2), angle, 1.0)
    matrix[:, 2] += (cx - sw / 2, cy - sh / 2)
    label_warped = cv2.warpAffine(label, matrix, (w, h))
    cover = cv2.warpAffine(coverage, matrix, (w, h))[..., None] * rng.uniform(0.85, 1.0)
    tray[:] = tray * (1 - cover) + label_warped * cover


def _scuff(tray: np.ndarray, rng: np.random.Generator) -> None:
    h, w = tray.shape[:2]
    marks = np.zeros((h, w), np.float32)
    cx, cy = rng.uniform(250, w - 250), rng.uniform(250, h - 250)
    angle = rng.uniform(0, np.pi)
    for _ in range(int(rng.integers(4, 14))):
        offset = rng.normal(0, 25, 2)
        length = rng.uniform(40, 160)
        dx, dy = np.cos(angle) * length, np.sin(angle) * length
        p0 = (int(cx + offset[0] - dx / 2), int(cy + offset[1] - dy / 2))
        p1 = (int(cx + offset[0] + dx / 2), int(cy + offset[1] + dy / 2))
        cv2.line(marks, p0, p1, float(rng.uniform(0.3, 1)), int(rng.integers(1, 4)), cv2.LINE_AA)
    marks = cv2.GaussianBlur(marks, (0, 0), 1.2) * rng.uniform(0.15, 0.35)
    tone = 0.12 if rng.random() < 0.6 else 0.85   # rubber-black or chalky-white marks
    tray[:] = tray * (1 - marks[..., None]) + tone * marks[..., None]


def _dust(tray: np.ndarray, rng: np.random.Generator) -> None:
    h, w = tray.shape[:2]
    specks = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(30, 150))):
        cv2.circle(specks, (int(rng.uniform(100, w - 100)), int(rng.uniform(100, h - 100))),
                   int(rng.integers(1, 4)), float(rng.uniform(0.4, 1)), -1, cv2.LINE_AA)
    for _ in range(int(rng.integers(1, 6))):   # lint fibres
        start = rng.uniform(150, min(h, w) - 150, 2)
        points = [start + np.cumsum(rng.normal(0, 10, (8, 2)), axis=0)]
        cv2.polylines(specks, [np.concatenate(points).astype(np.int32)], False, 0.8, 1,
                      cv2.LINE_AA)
    tone = np.float32(rng.uniform(0.7, 0.9))
    specks *= 0.6
    tray[:] = tray * (1 - specks[..., None]) + tone * specks[..., None]


TRAY_LOOKALIKES = {"sticker": _sticker, "scuff": _scuff, "dust": _dust}


def draw_tray_lookalikes(tray: np.ndarray, rng: np.random.Generator,
                         names: tuple[str, ...]) -> None:
    """Stickers, scuffs and dust on the tray floor (in place, before the item is placed)."""
    for name in names:
        TRAY_LOOKALIKES[name](tray, rng)
