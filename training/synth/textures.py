"""Procedural surfaces and printing: noise, kraft board, paper, printed artwork, bubbles, sheen.

Everything is float32 RGB in [0, 1] and drawn at the item's sprite resolution; the
expensive noise is made on a coarse grid and upsampled, which is also what makes it look
like smooth material variation rather than pixel noise.
"""

from __future__ import annotations

import string

import cv2
import numpy as np

FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_TRIPLEX,
         cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_PLAIN)


def smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Value noise in [0, 1] with features about ``cell`` pixels wide."""
    grid_h = max(2, int(round(height / cell)) + 2)
    grid_w = max(2, int(round(width / cell)) + 2)
    grid = rng.random((grid_h, grid_w), dtype=np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC).clip(0.0, 1.0)


def fractal_noise(rng: np.random.Generator, height: int, width: int, cell: float,
                  octaves: int = 3) -> np.ndarray:
    """Sum of value-noise octaves, normalised to [0, 1]."""
    total = np.zeros((height, width), np.float32)
    amplitude, norm = 1.0, 0.0
    for _ in range(octaves):
        total += amplitude * smooth_noise(rng, height, width, max(cell, 1.5))
        norm += amplitude
        amplitude *= 0.5
        cell /= 2.0
    return total / norm


def random_color(rng: np.random.Generator, saturation: tuple[float, float] = (0.3, 0.9),
                 value: tuple[float, float] = (0.35, 0.95)) -> np.ndarray:
    """An RGB colour in [0, 1] from a random hue and bounded saturation/value."""
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(*saturation) * 255,
                      rng.uniform(*value) * 255]]], np.float32).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32) / 255.0


def solid(height: int, width: int, color: np.ndarray) -> np.ndarray:
    return np.broadcast_to(np.asarray(color, np.float32), (height, width, 3)).copy()


def kraft_board(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Brown corrugated board: blotchy tone, fine fibres and faint flute stripes."""
    base = np.array([0.66, 0.50, 0.33], np.float32) * rng.uniform(0.85, 1.12)
    tone = 0.88 + 0.2 * fractal_noise(rng, height, width, max(height, width) / 4, 3)
    fibres = smooth_noise(rng, height, width, 1.6)
    flute_period = rng.uniform(5.0, 8.0)
    flutes = 0.985 + 0.015 * np.sin(np.arange(width, dtype=np.float32) * 2 * np.pi / flute_period)
    shade = (tone * (0.94 + 0.08 * fibres) * flutes[None, :])[..., None]
    return (base * shade).clip(0, 1)


def paper_surface(rng: np.random.Generator, height: int, width: int,
                  color: np.ndarray) -> np.ndarray:
    """Paper or card: a flat colour with slight mottling and grain."""
    mottle = 0.96 + 0.05 * fractal_noise(rng, height, width, max(height, width) / 3, 2)
    grain = 0.985 + 0.03 * smooth_noise(rng, height, width, 1.5)
    return (np.asarray(color, np.float32) * (mottle * grain)[..., None]).clip(0, 1)


def put_text(image: np.ndarray, text: str, origin: tuple[int, int], font: int, scale: float,
             color: np.ndarray | tuple[float, ...], thickness: int) -> None:
    """cv2.putText for float images (OpenCV 5 draws text on 8-bit images only)."""
    (tw, th), baseline = cv2.getTextSize(text, font, scale, thickness)
    pad = thickness + 2
    x0, y0 = origin[0] - pad, origin[1] - th - pad
    x1, y1 = origin[0] + tw + pad, origin[1] + baseline + pad
    h, w = image.shape[:2]
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if cx1 <= cx0 or cy1 <= cy0:
        return
    stamp = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.putText(stamp, text, (pad, pad + th), font, scale, 255, thickness, cv2.LINE_AA)
    cover = stamp[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0].astype(np.float32)[..., None] / 255.0
    roi = image[cy0:cy1, cx0:cx1]
    roi[:] = roi * (1 - cover) + np.asarray(color, np.float32) * cover


def random_word(rng: np.random.Generator, low: int = 3, high: int = 9) -> str:
    letters = string.ascii_uppercase if rng.random() < 0.6 else string.ascii_lowercase
    return "".join(rng.choice(list(letters), size=int(rng.integers(low, high))))


def draw_text_lines(image: np.ndarray, rng: np.random.Generator, box: tuple[int, int, int, int],
                    color: np.ndarray, line_height: int) -> None:
    """Fill a box with lines of small gibberish text (addresses, ingredients, blurbs)."""
    x0, y0, x1, y1 = box
    line_height = max(line_height, 6)
    scale = line_height / 30.0
    thickness = max(1, int(round(line_height / 14)))
    color_bgr = tuple(float(c) for c in color)
    y = y0 + line_height
    while y < y1:
        x = x0
        while x < x1 - line_height:
            word = random_word(rng, 2, 8)
            (w, _), _ = cv2.getTextSize(word, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
            if x + w > x1:
                break
            put_text(image, word, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, color_bgr, thickness)
            x += w + int(line_height * 0.4)
        y += int(line_height * rng.uniform(1.25, 1.6))


def draw_title(image: np.ndarray, rng: np.random.Generator, center: tuple[int, int],
               max_width: int, color: np.ndarray, words: int = 1) -> None:
    """A bold brand name or book title, sized to ``max_width``."""
    text = " ".join(random_word(rng, 3, 8) for _ in range(words))
    font = FONTS[int(rng.integers(len(FONTS)))]
    thickness = int(rng.integers(2, 5))
    (w, h), _ = cv2.getTextSize(text, font, 1.0, thickness)
    scale = max(0.3, max_width / max(w, 1))
    thickness = max(1, int(round(thickness * scale * 0.6)))
    (w, h), _ = cv2.getTextSize(text, font, scale, thickness)
    origin = (int(center[0] - w / 2), int(center[1] + h / 2))
    put_text(image, text, origin, font, scale, color, thickness)


def draw_barcode(image: np.ndarray, rng: np.random.Generator, box: tuple[int, int, int, int]) -> None:
    """A white label with black bars, as on every retail item."""
    x0, y0, x1, y1 = box
    cv2.rectangle(image, (x0, y0), (x1, y1), (0.97, 0.97, 0.96), -1)
    pad = max(2, (x1 - x0) // 12)
    x = x0 + pad
    bar_bottom = y1 - max(2, (y1 - y0) // 5)
    while x < x1 - pad:
        bar = int(rng.integers(1, 4))
        if rng.random() < 0.55:
            cv2.rectangle(image, (x, y0 + pad // 2), (min(x + bar - 1, x1 - pad), bar_bottom),
                          (0.05, 0.05, 0.05), -1)
        x += bar + int(rng.integers(1, 3))


def print_artwork(rng: np.random.Generator, height: int, width: int,
                  background: np.ndarray | None = None) -> np.ndarray:
    """Retail packaging print: colour fields, bands, a product picture, brand, text, barcode."""
    primary = random_color(rng)
    accent = random_color(rng, value=(0.2, 1.0))
    art = solid(height, width, background if background is not None else primary)
    if background is None and rng.random() < 0.6:
        ramp = np.linspace(0.85, 1.1, height if rng.random() < 0.5 else width, dtype=np.float32)
        art *= (ramp[:, None, None] if ramp.size == height else ramp[None, :, None])
    side = min(height, width)
    for _ in range(int(rng.integers(1, 4))):
        if rng.random() < 0.5:
            y = int(rng.integers(0, height))
            band = int(rng.uniform(0.04, 0.18) * height)
            cv2.rectangle(art, (0, y), (width, y + band), tuple(map(float, accent)), -1)
        else:
            cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
            radius = int(rng.uniform(0.08, 0.3) * side)
            cv2.circle(art, (cx, cy), radius, tuple(map(float, random_color(rng))), -1,
                       cv2.LINE_AA)
    if rng.random() < 0.7:  # product picture: a soft shaded blob
        cx, cy = int(width * rng.uniform(0.3, 0.7)), int(height * rng.uniform(0.35, 0.7))
        axes = (int(side * rng.uniform(0.12, 0.28)), int(side * rng.uniform(0.1, 0.25)))
        blob = np.zeros((height, width), np.float32)
        cv2.ellipse(blob, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1,
                    cv2.LINE_AA)
        blob = cv2.GaussianBlur(blob, (0, 0), max(1.0, side * 0.01))
        shade = 0.7 + 0.5 * smooth_noise(rng, height, width, side / 5)
        color = random_color(rng)
        art = art * (1 - blob[..., None]) + (color * shade[..., None]) * blob[..., None]
    ink = np.zeros(3, np.float32) + 0.05 if rng.random() < 0.6 else np.ones(3, np.float32) * 0.97
    draw_title(art, rng, (width // 2, int(height * rng.uniform(0.15, 0.3))), int(width * 0.7),
               ink, words=int(rng.integers(1, 3)))
    text_top = int(height * rng.uniform(0.7, 0.8))
    draw_text_lines(art, rng, (int(width * 0.08), text_top, int(width * 0.6), height - 4),
                    ink, max(6, side // 28))
    if rng.random() < 0.7:
        bw, bh = int(width * 0.22), int(height * 0.1)
        draw_barcode(art, rng, (width - bw - 6, height - bh - 6, width - 6, height - 6))
    return art.clip(0, 1)


def bubble_relief(rng: np.random.Generator, height: int, width: int, pitch: float) -> np.ndarray:
    """Shading of a bubble-wrap lining seen through a mailer: a hex grid of soft domes."""
    relief = np.zeros((height, width), np.float32)
    radius = pitch * 0.38
    row = 0
    y = pitch / 2
    while y < height + pitch:
        x = pitch / 2 + (pitch / 2 if row % 2 else 0)
        while x < width + pitch:
            cv2.circle(relief, (int(x), int(y)), max(1, int(radius)), 1.0, -1, cv2.LINE_AA)
            x += pitch
        y += pitch * 0.866
        row += 1
    relief = cv2.GaussianBlur(relief, (0, 0), max(0.6, pitch * 0.12))
    light = np.float32(rng.uniform(0.7, 1.3))
    dy = np.gradient(relief, axis=0) * light
    dx = np.gradient(relief, axis=1)
    return (0.5 + 1.8 * (dx + dy)).clip(0, 1)


def plastic_sheen(rng: np.random.Generator, height: int, width: int, strength: float) -> np.ndarray:
    """Specular streaks of wrinkled film: iso-lines of stretched noise, as thin bright ridges."""
    small_h, small_w = max(8, height // 4), max(8, width // 4)
    side = int(max(small_h, small_w) * 1.5)
    cell = side / rng.uniform(5, 9)
    grid = rng.random((max(2, int(side / cell)) + 2, max(2, int(side / (cell * 4))) + 2),
                      dtype=np.float32)
    stretched = cv2.resize(grid, (side, side), interpolation=cv2.INTER_CUBIC)
    rotation = cv2.getRotationMatrix2D((side / 2, side / 2), float(rng.uniform(0, 180)), 1.0)
    rotation[:, 2] -= ((side - small_w) / 2, (side - small_h) / 2)
    noise = cv2.warpAffine(stretched, rotation, (small_w, small_h), borderMode=cv2.BORDER_REFLECT)
    highlight = np.zeros_like(noise)
    for level in rng.uniform(0.3, 0.7, 3):
        highlight += np.exp(-((noise - level) / 0.025) ** 2)
    highlight = cv2.resize(highlight, (width, height), interpolation=cv2.INTER_LINEAR)
    return (highlight * strength * 0.6).clip(0, 1)


def bevel(alpha: np.ndarray, width: float) -> np.ndarray:
    """Darkening towards an object's outline, so flat sprites read as having edges."""
    inside = (alpha > 0.5).astype(np.uint8)
    distance = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    return (0.8 + 0.2 * np.clip(distance / max(width, 1.0), 0, 1)).astype(np.float32)
