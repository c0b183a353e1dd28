"""Grab times per frame at 4096×3000 on pypylon's emulator: ``python -m drivers.camera.bench``.

Prints p50/p95 of the whole `grab` (software trigger, transfer, conversion to RGB) for
RGB8Packed and a Bayer format, and of the demosaicing alone. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from drivers.camera.emulation_switch import enable_emulation

WIDTH, HEIGHT = 4096, 3000


def bench_frame() -> np.ndarray:
    """A 12 MP RGB frame: colour gradient with noise (content does not change the timing)."""
    rng = np.random.default_rng(0)
    y = np.linspace(0, 1, HEIGHT, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, WIDTH, dtype=np.float32)[None, :]
    planes = (40 + 170 * x + 0 * y, 40 + 170 * y + 0 * x, 200 - 150 * x * y)
    rgb = np.dstack([np.rint(p).astype(np.uint8) for p in planes])
    return cv2.add(rgb, rng.integers(0, 4, rgb.shape, dtype=np.uint8))


def percentiles(samples_s: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    ms = sorted(s * 1000 for s in samples_s)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return statistics.median(ms), p95


def timed(action: Callable[[], object], count: int, warm_up: int = 2) -> list[float]:
    for _ in range(warm_up):
        action()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20, help="timed grabs per format")
    parser.add_argument("--bayer", default="BayerRG8", help="Bayer format to time")
    args = parser.parse_args(argv)

    enable_emulation(1)  # before pypylon loads
    from drivers.camera import convert
    from drivers.camera.base import CameraSettings
    from drivers.camera.emulated import EmulatedBaslerCamera

    frame = bench_frame()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        cv2.imwrite(str(Path(folder) / "frame.bmp"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        with EmulatedBaslerCamera(folder) as camera:
            for pixel_format in ("RGB8Packed", args.bayer):
                camera.apply(CameraSettings(pixel_format=pixel_format, width=WIDTH, height=HEIGHT))
                samples = timed(lambda: camera.grab(5000), args.count)
                rows.append((f"grab {pixel_format} (to RGB)", samples))
    raw = convert.to_rgb(frame, "RGB8Packed")[..., 1].copy()  # a single-plane 12 MP mosaic
    rows.append((f"demosaic only {args.bayer}",
                 timed(lambda: convert.to_rgb(raw, args.bayer), args.count)))

    print(f"pypylon emulator, {WIDTH}x{HEIGHT}, {args.count} frames each (after 2 warm-up)")
    print(f"{'what':<34}{'p50 ms':>9}{'p95 ms':>9}")
    for name, samples in rows:
        p50, p95 = percentiles(samples)
        print(f"{name:<34}{p50:>9.1f}{p95:>9.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
