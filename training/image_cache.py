"""Decoding training images once, at the size training needs, and keeping them on disk."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def decode_reduction(size: int, oversampling: float = 2.0, full: int = 2048) -> int:
    """The largest JPEG decode reduction (8, 4, 2) that still leaves ``oversampling`` × the
    target size, so resizing afterwards stays anti-aliased; decoding at 1/4 is ~10× faster."""
    for reduce in (8, 4, 2):
        if full // reduce >= oversampling * size:
            return reduce
    return 1


def save_arrays(path: Path, **arrays: np.ndarray) -> None:
    """Write an .npz cache so that a crash leaves the old file or the new one. The temporary
    name is the process's own, so runs sharing a cache folder at once (an ensemble's seeds)
    do not write into one file; the last rename wins, with identical contents."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    try:
        np.savez(temporary, **arrays)
        temporary.replace(path)
    except BaseException:            # interrupted too: trunk caches run to gigabytes
        temporary.unlink(missing_ok=True)
        raise
