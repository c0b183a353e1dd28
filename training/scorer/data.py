"""Training samples for the scorer: tray images, labels and heatmap targets, cached.

Queries are always used. References are used too when the data set labels them (the
synthetic set carries ``defect``/``defect_types``/``severity`` on references; the real
Kaputt references carry no labels and are skipped). A heatmap target is known where the
split has a ``defect_mask`` column: the mask of a defective capture, all zeros for a
non-defective one; real data has no such column and trains the heatmap without it.

Two regions can be learned from: ``tray`` (the whole tray image, so a spill beside the item
counts) and ``item`` (the square item crop the station cuts with ``engines.item_crop`` from
the tray image and its item mask, at about three times the tray's resolution on the item,
so that faint scratches survive the resize). For ``item`` the defect mask is cut with the
same box; where a data set's item mask is crop-sized (no box to cut with), its crop file
is used and a defect mask is used only when it is crop-sized too.

Images are decoded once (JPEG decode at reduced size) and stored at the training size in
an ``.npz``; masks are stored at heatmap resolution as coverage 0..255.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import cv2
import numpy as np

from engines.dataset import read_split
from engines.item_crop import cut_square, item_box
from engines.preprocess import read_mask, read_rgb, resize_square
from engines.taxonomy import DEFECT_TYPES, parse_defect_types
from training.image_cache import decode_reduction, save_arrays

Progress = Callable[[int, int], None]
DEFECT_MASK_COLUMN = "defect_mask"
LABEL_NAMES: tuple[str, ...] = ("any", "major", *DEFECT_TYPES)
REGIONS: tuple[str, ...] = ("tray", "item")


@dataclass(frozen=True)
class _Source:
    capture_id: str
    image: str
    labels: np.ndarray          # float32 (any, major, types...)
    mask: str | None            # defect mask path; "" = known to be all zeros; None = unknown
    is_query: bool
    crop: str = ""              # the data set's item crop
    item_mask: str = ""         # the item mask (tray-sized or crop-sized)


@dataclass
class ScorerSamples:
    """One split as arrays: the training and validation loops index these."""

    capture_ids: list[str]
    images: np.ndarray          # N×S×S×3 RGB uint8
    labels: np.ndarray          # N×9 float32 in the order of LABEL_NAMES
    heat_targets: np.ndarray    # N×(S/8)×(S/8) uint8, defect coverage 0..255
    has_mask: np.ndarray        # N bool: heat target known
    is_query: np.ndarray        # N bool

    def __len__(self) -> int:
        return len(self.capture_ids)

    @staticmethod
    def concatenate(parts: "list[ScorerSamples]") -> "ScorerSamples":
        """One sample set from several (e.g. the train splits of several data sets)."""
        return ScorerSamples([c for part in parts for c in part.capture_ids],
                             *(np.concatenate([getattr(part, name) for part in parts])
                               for name in ("images", "labels", "heat_targets", "has_mask",
                                            "is_query")))

    def subset(self, keep: np.ndarray) -> "ScorerSamples":
        return ScorerSamples([c for c, k in zip(self.capture_ids, keep) if k], self.images[keep],
                             self.labels[keep], self.heat_targets[keep], self.has_mask[keep],
                             self.is_query[keep])


def _label_vector(defect: bool, major: bool, types: tuple[str, ...]) -> np.ndarray:
    return np.array([float(defect), float(major and defect),
                     *(float(t in types) for t in DEFECT_TYPES)], np.float32)


def _mask_of(extra: Mapping[str, Any], defect: bool) -> str | None:
    if DEFECT_MASK_COLUMN not in extra:
        return None
    path = extra[DEFECT_MASK_COLUMN] or ""
    if defect and not path:
        return None  # a defect without its mask: location unknown
    return path if defect else ""


def _sources(root: Path, split: str, include_references: bool) -> list[_Source]:
    dataset = read_split(root, split, check_files=False)
    sources = [_Source(q.capture_id, q.query_image,
                       _label_vector(q.defect, q.major_defect, q.defect_types),
                       _mask_of(q.extra, q.defect), True, q.query_crop, q.query_mask)
               for q in dataset.queries]
    if include_references:
        for index, r in enumerate(dataset.references):
            if "defect" not in r.extra or r.extra["defect"] is None:
                continue  # unlabelled (real Kaputt references)
            defect = bool(r.extra["defect"])
            major = bool(r.extra.get("major_defect", r.extra.get("severity") == "major"))
            types = tuple(t for t in parse_defect_types(r.extra.get("defect_types") or "")
                          if t in DEFECT_TYPES)
            capture_id = str(r.extra.get("capture_id") or f"{r.item_identifier}-reference{index}")
            sources.append(_Source(capture_id, r.reference_image,
                                   _label_vector(defect, major, types),
                                   _mask_of(r.extra, defect), False, r.reference_crop,
                                   r.reference_mask))
    return sources



def heat_target(mask: np.ndarray, heat_size: int) -> np.ndarray:
    """Defect-mask coverage per heatmap cell, 0..255 (area average of a 0/255 mask)."""
    return cv2.resize(mask, (heat_size, heat_size), interpolation=cv2.INTER_AREA)


def _item_region(root: Path, source: _Source) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """(item crop, its defect mask or None, whether that mask is known) of one source."""
    image = read_rgb(str(root / source.image))
    item_mask = read_mask(str(root / source.item_mask))
    if item_mask.shape == image.shape[:2]:
        box = item_box(item_mask)
        defect = (cut_square(read_mask(str(root / source.mask)), box) if source.mask else None)
        return cut_square(image, box), defect, source.mask is not None
    crop = read_rgb(str(root / source.crop))
    defect = read_mask(str(root / source.mask)) if source.mask else None
    if defect is not None and defect.shape != crop.shape[:2]:
        return crop, None, False
    return crop, defect, source.mask is not None


def load_samples(root: Path, split: str, size: int, heat_stride: int = 8,
                 cache_dir: Path | None = None, include_references: bool = True,
                 progress: Progress | None = None, region: str = "tray") -> ScorerSamples:
    """The samples of one split at ``size``² (``region`` tray or item), from the cache when
    it is there."""
    if region not in REGIONS:
        raise ValueError(f"region must be one of {REGIONS}, got {region!r}")
    root = Path(root)
    sources = _sources(root, split, include_references)
    heat_size = size // heat_stride
    identity = [(s.capture_id, s.image, s.mask, s.labels.tolist()) for s in sources]
    key = hashlib.sha256(repr((str(root.resolve()), split, size, heat_stride, identity)
                              + ((region,) if region != "tray" else ())).encode()
                         ).hexdigest()[:16]
    prefix = "scorer" if region == "tray" else f"scorer-{region}"
    cache = cache_dir / f"{prefix}-{split}-{size}-{key}.npz" if cache_dir else None
    capture_ids = [s.capture_id for s in sources]
    labels = (np.stack([s.labels for s in sources]) if sources
              else np.zeros((0, len(LABEL_NAMES)), np.float32))
    has_mask = np.array([s.mask is not None for s in sources], bool)
    is_query = np.array([s.is_query for s in sources], bool)
    if cache and cache.is_file():
        with np.load(cache) as stored:
            if "has_mask" in stored:
                has_mask = stored["has_mask"]
            return ScorerSamples(capture_ids, stored["images"], labels, stored["heat"], has_mask,
                                 is_query)
    reduce = decode_reduction(size, oversampling=1.5)
    images = np.empty((len(sources), size, size, 3), np.uint8)
    heat = np.zeros((len(sources), heat_size, heat_size), np.uint8)
    if progress and sources:
        progress(0, len(sources))
    for index, source in enumerate(sources):
        if region == "item":
            crop, defect, has_mask[index] = _item_region(root, source)
            images[index] = resize_square(crop, size)
            if defect is not None:
                heat[index] = heat_target(defect, heat_size)
        else:
            images[index] = resize_square(read_rgb(str(root / source.image), reduce), size)
            if source.mask:
                heat[index] = heat_target(read_mask(str(root / source.mask), reduce), heat_size)
        if progress:
            progress(index + 1, len(sources))
    if cache:
        save_arrays(cache, images=images, heat=heat, has_mask=has_mask)
    return ScorerSamples(capture_ids, images, labels, heat, has_mask, is_query)
