"""Item crops at a pose-independent scale, their pose augmentations, and patch features.

The crop is the square around the item mask's minimum enclosing circle (plus padding),
not the axis-aligned bounding box: the circle does not change when the item turns, so
the item appears at the same scale in every capture whatever its angle, and any rotation
of the crop about its centre keeps the whole item inside. Patch features come from the
scorer's frozen ImageNet trunk (``features`` output, stride 16) and are L2-normalised,
so distances are cosine distances comparable across items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import cv2
import numpy as np

from engines.item_crop import CropBox, cut_square

FEATURE_STRIDE = 16
# name → (quarter turns counter-clockwise, mirror left-right first, extra rotation in degrees)
Transform = tuple[int, bool, float]
DIHEDRAL: tuple[Transform, ...] = tuple((turns, flip, 0.0) for flip in (False, True)
                                        for turns in range(4))
# The dihedral group covers quarter turns; the diagonal copies halve the worst angle gap
# (45° → 22.5°) at twice the reference embedding cost.
DIHEDRAL_AND_DIAGONAL: tuple[Transform, ...] = DIHEDRAL + tuple(
    (turns, flip, 45.0) for turns, flip, _ in DIHEDRAL)
AUGMENTATIONS: dict[str, tuple[Transform, ...]] = {
    "identity": ((0, False, 0.0),), "d8": DIHEDRAL, "d8+45": DIHEDRAL_AND_DIAGONAL}


class PatchEmbedder(Protocol):
    """What the reference comparison needs from the scorer (``SupervisedScorer`` fits)."""

    def embed_batch(self, images: Sequence[np.ndarray], size: int) -> np.ndarray: ...


@dataclass(frozen=True)
class PatchSettings:
    """How item crops become patch features; part of every cache key."""

    embed_size: int = 320          # crop side fed to the trunk → (size/16)² patches
    padding: float = 0.12          # crop side = enclosing-circle diameter × (1 + 2·padding)
    margin: float = 0.06           # item mask dilated by this fraction of the crop side
    augmentation: str = "d8+45"    # reference pose augmentation, a key of AUGMENTATIONS
    neighbourhood: int = 1         # features averaged over k×k patches (PatchCore-style);
                                   # 3 measured worse here (validation AUROC 87 → 68)

    def __post_init__(self) -> None:
        if self.embed_size % 32 or self.embed_size < 64:
            raise ValueError(f"embed_size {self.embed_size} must be a multiple of 32, ≥ 64")
        if self.augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation {self.augmentation!r} not one of {sorted(AUGMENTATIONS)}")

    @property
    def grid(self) -> int:
        return self.embed_size // FEATURE_STRIDE

    def key_text(self) -> str:
        return (f"size={self.embed_size};padding={self.padding};margin={self.margin};"
                f"augmentation={self.augmentation};neighbourhood={self.neighbourhood}")


@dataclass(frozen=True)
class PatchGrid:
    """One crop's patch features: ``features`` h×w×C unit vectors, ``valid`` h×w (the item
    and the tray just around it), ``box`` where the crop lies in the tray image."""

    features: np.ndarray
    valid: np.ndarray
    box: CropBox

    def valid_vectors(self) -> np.ndarray:
        return self.features[self.valid]


def circle_box(mask: np.ndarray, padding: float) -> CropBox:
    """Square around the mask's minimum enclosing circle: same side at every item angle."""
    points = cv2.findNonZero((mask > 0).astype(np.uint8))
    if points is None:
        raise ValueError("the item mask is empty")
    (centre_x, centre_y), radius = cv2.minEnclosingCircle(points)
    side = max(FEATURE_STRIDE, int(round(2.0 * (radius + 1.0) * (1.0 + 2.0 * padding))))
    return CropBox(int(round(centre_x - side / 2.0)), int(round(centre_y - side / 2.0)), side)


def item_crop(image: np.ndarray, mask: np.ndarray, settings: PatchSettings
              ) -> tuple[np.ndarray, np.ndarray, CropBox]:
    """(RGB crop, 0/1 validity mask, box), both at ``embed_size``², mask already dilated."""
    box = circle_box(mask, settings.padding)
    size = settings.embed_size
    crop = cv2.resize(cut_square(image, box), (size, size), interpolation=cv2.INTER_AREA
                      if box.side > size else cv2.INTER_LINEAR)
    binary = (mask > 0).astype(np.uint8)
    height, width = binary.shape
    region = _cut_zero_padded(binary, box, height, width)
    region = cv2.resize(region, (size, size), interpolation=cv2.INTER_NEAREST)
    radius = max(1, int(round(settings.margin * size)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return crop, cv2.dilate(region, kernel), box


def _cut_zero_padded(binary: np.ndarray, box: CropBox, height: int, width: int) -> np.ndarray:
    """Like ``cut_square`` but outside the tray image counts as no item."""
    out = np.zeros((box.side, box.side), np.uint8)
    x0, y0 = max(0, box.x), max(0, box.y)
    x1, y1 = min(width, box.x + box.side), min(height, box.y + box.side)
    if x1 > x0 and y1 > y0:
        out[y0 - box.y:y1 - box.y, x0 - box.x:x1 - box.x] = binary[y0:y1, x0:x1]
    return out


def apply_transform(image: np.ndarray, transform: Transform, fill_border: bool) -> np.ndarray:
    """Mirror, quarter-turn, then rotate by the extra angle about the centre."""
    turns, flip, degrees = transform
    out = image[:, ::-1] if flip else image
    out = np.ascontiguousarray(np.rot90(out, turns))
    if degrees:
        size = out.shape[0]
        matrix = cv2.getRotationMatrix2D((size / 2.0 - 0.5, size / 2.0 - 0.5), degrees, 1.0)
        out = cv2.warpAffine(out, matrix, (size, size), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE if fill_border else cv2.BORDER_CONSTANT)
    return out


def patch_validity(dilated_mask: np.ndarray, grid: int) -> np.ndarray:
    """A patch counts when at least a quarter of it is item or item surroundings."""
    coverage = cv2.resize(dilated_mask.astype(np.float32), (grid, grid), interpolation=cv2.INTER_AREA)
    return coverage >= 0.25


def normalise(features: np.ndarray, neighbourhood: int = 1) -> np.ndarray:
    """C×h×w trunk output → h×w×C unit vectors, each averaged over its k×k neighbourhood."""
    vectors = np.moveaxis(features, 0, -1).astype(np.float32)
    if neighbourhood > 1:
        vectors = cv2.blur(np.ascontiguousarray(vectors), (neighbourhood, neighbourhood),
                           borderType=cv2.BORDER_REFLECT)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-6)


def embed_grids(embedder: PatchEmbedder, image: np.ndarray, mask: np.ndarray,
                settings: PatchSettings, transforms: Sequence[Transform]) -> list[PatchGrid]:
    """Patch grids of the item crop under each transform, in one batched trunk call."""
    crop, dilated, box = item_crop(image, mask, settings)
    crops = [apply_transform(crop, t, fill_border=True) for t in transforms]
    masks = [apply_transform(dilated, t, fill_border=False) for t in transforms]
    features = embedder.embed_batch(crops, settings.embed_size)
    return [PatchGrid(normalise(f, settings.neighbourhood), patch_validity(m, settings.grid), box)
            for f, m in zip(features, masks)]


def query_grid(embedder: PatchEmbedder, image: np.ndarray, mask: np.ndarray,
               settings: PatchSettings) -> PatchGrid:
    """The query as captured: references carry the pose augmentation, the query none."""
    return embed_grids(embedder, image, mask, settings, AUGMENTATIONS["identity"])[0]
