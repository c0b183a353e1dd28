"""Irregular outlines shared by real damage and its printed look-alikes: torn holes, splashes.

Keeping one generator for both is the point: a printed hole must have the same
silhouette statistics as a real one, so only shading and context tell them apart.
"""

from __future__ import annotations

import cv2
import numpy as np


def jagged_polygon(rng: np.random.Generator, center: tuple[float, float], radius: float,
                   jaggedness: float = 0.35, elongation: float = 1.0,
                   angle_deg: float = 0.0, points: int = 28) -> np.ndarray:
    """A torn-edged closed polygon (int32 points) around ``center``."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, points))
    smooth = 1 + 0.25 * np.sin(angles * 2 + rng.uniform(0, 6.3)) * rng.uniform(0.3, 1)
    spikes = 1 + rng.uniform(-jaggedness, jaggedness, points)
    r = radius * smooth * spikes
    x, y = r * np.cos(angles) * elongation, r * np.sin(angles)
    theta = np.deg2rad(angle_deg)
    xr = x * np.cos(theta) - y * np.sin(theta) + center[0]
    yr = x * np.sin(theta) + y * np.cos(theta) + center[1]
    return np.stack([xr, yr], axis=1).round().astype(np.int32)


def splash_mask(rng: np.random.Generator, height: int, width: int, center: tuple[float, float],
                radius: float, droplets: int = 8, direction_deg: float | None = None) -> np.ndarray:
    """Float mask in [0, 1] of a puddle with lobes and droplets flung in one direction."""
    mask = np.zeros((height, width), np.float32)
    lobes = int(rng.integers(3, 7))
    for _ in range(lobes):
        offset = rng.normal(0, radius * 0.35, 2)
        c = (center[0] + offset[0], center[1] + offset[1])
        poly = jagged_polygon(rng, c, radius * rng.uniform(0.45, 0.8), 0.12,
                              rng.uniform(1.0, 1.8), rng.uniform(0, 180), 20)
        cv2.fillPoly(mask, [poly], 1.0, cv2.LINE_AA)
    heading = np.deg2rad(direction_deg if direction_deg is not None else rng.uniform(0, 360))
    for _ in range(droplets):
        a = heading + rng.normal(0, 0.6)
        d = radius * rng.uniform(0.9, 1.8)
        c = (int(center[0] + d * np.cos(a)), int(center[1] + d * np.sin(a)))
        cv2.circle(mask, c, max(1, int(radius * rng.uniform(0.03, 0.1))), 1.0, -1, cv2.LINE_AA)
    return cv2.GaussianBlur(mask, (0, 0), max(0.8, radius * 0.02))
