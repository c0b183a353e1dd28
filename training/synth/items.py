"""An item's identity: what stays the same across every capture of one item identifier.

Material, size, shape, artwork seed, blister-unit grid and any printed damage-like
artwork are fixed per item, so its queries and references show the same product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engines.taxonomy import MATERIALS

# Rough material mix of the real data: cardboard dominates, then plastics and books.
MATERIAL_WEIGHTS: dict[str, float] = {
    "cardboard": 0.26, "plastic_loose_bag": 0.10, "plastic_tight_wrap": 0.09,
    "plastic_bubble_wrap": 0.08, "plastic_hard": 0.11, "paper": 0.08, "book_paper": 0.08,
    "book_plastic_tight_wrap": 0.06, "book_other": 0.06, "other": 0.08,
}
assert set(MATERIAL_WEIGHTS) == set(MATERIALS)

# Long side of the item on the 2048 px tray crop.
SIZE_RANGE_PX: dict[str, tuple[int, int]] = {
    "cardboard": (600, 1250), "plastic_loose_bag": (650, 1250), "plastic_tight_wrap": (450, 1050),
    "plastic_bubble_wrap": (700, 1250), "plastic_hard": (520, 950), "paper": (650, 1200),
    "book_paper": (550, 950), "book_plastic_tight_wrap": (550, 950), "book_other": (550, 1000),
    "other": (400, 950),
}
PRINTED_LOOKALIKES: tuple[str, ...] = ("printed_hole", "printed_spill")


@dataclass(frozen=True)
class ItemIdentity:
    index: int
    identifier: str
    material: str
    length_px: int              # long side on the tray crop
    width_px: int               # short side on the tray crop
    height_px: int              # how far it stands off the tray (shadow offset)
    shape: str                  # box, bag, mailer, envelope, book, blister, round, tube
    artwork_seed: int
    unit_grid: tuple[int, int] | None   # (rows, cols) of blister units, else None
    printed_lookalike: str      # "" or one of PRINTED_LOOKALIKES

    @property
    def has_units(self) -> bool:
        return self.unit_grid is not None


def item_identifier(seed: int, index: int) -> str:
    """A 13-digit EAN in the in-store range (prefix 2), unique per (seed mod 10^4, index)."""
    digits = f"20{seed % 10_000:04d}{index % 1_000_000:06d}"
    weighted = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits))
    return digits + str((10 - weighted % 10) % 10)


def _shape_for(material: str, rng: np.random.Generator) -> str:
    if material == "plastic_loose_bag":
        return "bag"
    if material == "plastic_bubble_wrap":
        return "mailer"
    if material == "paper":
        return "envelope"
    if material.startswith("book"):
        return "book"
    if material == "plastic_hard":
        return "blister"
    if material == "other":
        return str(rng.choice(["round", "tube", "box"]))
    return "box"


def sample_identity(rng: np.random.Generator, seed: int, index: int) -> ItemIdentity:
    """Draw one item's identity from its own generator."""
    materials = list(MATERIAL_WEIGHTS)
    weights = np.array([MATERIAL_WEIGHTS[m] for m in materials])
    material = materials[int(rng.choice(len(materials), p=weights / weights.sum()))]
    shape = _shape_for(material, rng)
    low, high = SIZE_RANGE_PX[material]
    length = int(rng.integers(low, high + 1))
    aspect = {"book": (0.62, 0.8), "envelope": (0.55, 0.75), "mailer": (0.6, 0.8),
              "round": (0.85, 1.0), "tube": (0.22, 0.4), "blister": (0.55, 0.85),
              "bag": (0.55, 0.85)}.get(shape, (0.45, 0.95))
    width = int(length * rng.uniform(*aspect))
    height = {"box": (60, 260), "book": (25, 70), "blister": (20, 50), "round": (60, 200),
              "tube": (40, 90)}.get(shape, (10, 40))
    unit_grid = None
    if shape == "blister":
        unit_grid = (int(rng.integers(1, 4)), int(rng.integers(2, 5)))
    printed = ""
    if shape not in ("blister",) and rng.random() < 0.14:
        printed = str(rng.choice(PRINTED_LOOKALIKES))
    return ItemIdentity(
        index=index, identifier=item_identifier(seed, index), material=material,
        length_px=length, width_px=width, height_px=int(rng.integers(*height)), shape=shape,
        artwork_seed=int(rng.integers(0, 2**31 - 1)), unit_grid=unit_grid,
        printed_lookalike=printed)
