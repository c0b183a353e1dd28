"""Tray images and item masks at the segmenter's resolution, decoded once and cached."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import numpy as np

from engines.dataset import read_split
from engines.preprocess import read_mask, read_rgb, resize_square
from training.image_cache import decode_reduction, save_arrays

Progress = Callable[[int, int], None]



def load_split_arrays(root: Path, split: str, size: int, cache_dir: Path | None = None,
                      include_references: bool = True,
                      progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images N×size×size×3 RGB uint8, masks N×size×size uint8 0/255) for one split.

    References are item images too, so they are used for segmentation training.
    """
    dataset = read_split(root, split, check_files=False)
    pairs = [(q.query_image, q.query_mask) for q in dataset.queries]
    if include_references:
        pairs += [(r.reference_image, r.reference_mask) for r in dataset.references]
    key = hashlib.sha256(repr((str(root.resolve()), split, size, pairs)).encode()).hexdigest()[:16]
    cache = cache_dir / f"seg-{split}-{size}-{key}.npz" if cache_dir else None
    if cache and cache.is_file():
        with np.load(cache) as stored:
            return stored["images"], stored["masks"]
    reduce = decode_reduction(size)
    images = np.empty((len(pairs), size, size, 3), np.uint8)
    masks = np.empty((len(pairs), size, size), np.uint8)
    if progress and pairs:
        progress(0, len(pairs))
    for index, (image_path, mask_path) in enumerate(pairs):
        images[index] = resize_square(read_rgb(str(root / image_path), reduce), size)
        mask = resize_square(read_mask(str(root / mask_path), reduce), size)
        masks[index] = np.where(mask > 127, 255, 0)
        if progress:
            progress(index + 1, len(pairs))
    if cache:
        save_arrays(cache, images=images, masks=masks)
    return images, masks
