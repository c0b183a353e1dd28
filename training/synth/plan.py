"""Per-item capture plan: how many queries and references, their poses, defects and look-alikes.

Plans are cheap (no pixels), so the label statistics can be checked over thousands of
items, and every random choice comes from ``SeedSequence(seed, spawn_key=(index, ...))``
so an item's captures do not depend on which worker renders them or in which order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engines.taxonomy import DEFECT_TYPES
from training.synth.items import ItemIdentity, sample_identity

QUERY_DEFECT_RATE = 0.30
REFERENCE_DEFECT_RATE = 0.10
TWO_TYPES_RATE = 0.25
TRAY_LOOKALIKE_RATES: dict[str, float] = {"sticker": 0.12, "scuff": 0.15, "dust": 0.22}

# Relative frequency of each type (deformation most common, as in the paper's Figure 4),
# and how often it is major: deconstruction and spillage are mostly major.
TYPE_WEIGHTS: dict[str, float] = {
    "penetration": 0.17, "deformation": 0.26, "actuation": 0.15, "deconstruction": 0.10,
    "spillage": 0.10, "superficial": 0.14, "missing_unit": 0.0,
}
MISSING_UNIT_WEIGHT_ON_UNIT_ITEMS = 0.45
MAJOR_RATE: dict[str, float] = {
    "penetration": 0.35, "deformation": 0.3, "actuation": 0.35, "deconstruction": 0.7,
    "spillage": 0.65, "superficial": 0.3, "missing_unit": 0.5,
}


@dataclass(frozen=True)
class Defect:
    type: str
    severity: str  # "minor" or "major"


@dataclass(frozen=True)
class CaptureSpec:
    capture_id: str
    kind: str                     # "query" or "reference"
    number: int                   # k in "-q{k}" / "-r{k}"
    defects: tuple[Defect, ...]
    tray_lookalikes: tuple[str, ...]
    back_side: bool               # shows the item's back (pose variation, as in real references)
    printed_lookalike: str        # damage-like artwork visible in this capture, or ""
    render_entropy: tuple[int, ...]   # (seed, index, kind code, number) for the renderer

    @property
    def defective(self) -> bool:
        return bool(self.defects)

    @property
    def severity(self) -> str:
        if not self.defects:
            return "none"
        return "major" if any(d.severity == "major" for d in self.defects) else "minor"

    @property
    def lookalikes(self) -> tuple[str, ...]:
        return ((self.printed_lookalike,) if self.printed_lookalike else ()) + self.tray_lookalikes

    @property
    def defect_types(self) -> tuple[str, ...]:
        return tuple(t for t in DEFECT_TYPES if any(d.type == t for d in self.defects))


@dataclass(frozen=True)
class ItemPlan:
    identity: ItemIdentity
    queries: tuple[CaptureSpec, ...]
    references: tuple[CaptureSpec, ...]

    @property
    def captures(self) -> tuple[CaptureSpec, ...]:
        return self.queries + self.references


def item_rng(seed: int, index: int, *stream: int) -> np.random.Generator:
    """The generator for one item (and optionally one of its sub-streams)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, *stream)))


def _sample_defects(rng: np.random.Generator, identity: ItemIdentity,
                    allow_missing_unit: bool) -> tuple[Defect, ...]:
    weights = dict(TYPE_WEIGHTS)
    if identity.has_units and allow_missing_unit:
        weights["missing_unit"] = MISSING_UNIT_WEIGHT_ON_UNIT_ITEMS
    types = [t for t in DEFECT_TYPES if weights[t] > 0]
    p = np.array([weights[t] for t in types])
    count = 2 if rng.random() < TWO_TYPES_RATE else 1
    chosen = rng.choice(len(types), size=count, replace=False, p=p / p.sum())
    return tuple(Defect(types[i], "major" if rng.random() < MAJOR_RATE[types[i]] else "minor")
                 for i in sorted(chosen))


def _tray_lookalikes(rng: np.random.Generator) -> tuple[str, ...]:
    return tuple(name for name, rate in TRAY_LOOKALIKE_RATES.items() if rng.random() < rate)


def plan_item(seed: int, index: int) -> ItemPlan:
    """Identity plus 1-5 queries and 1-3 references of one item."""
    identity = sample_identity(item_rng(seed, index, 0), seed, index)
    rng = item_rng(seed, index, 1)
    captures: dict[str, list[CaptureSpec]] = {"query": [], "reference": []}
    for kind, code, count, rate in (("query", 2, int(rng.integers(1, 6)), QUERY_DEFECT_RATE),
                                    ("reference", 3, int(rng.integers(1, 4)),
                                     REFERENCE_DEFECT_RATE)):
        for number in range(count):
            defects = (_sample_defects(rng, identity, allow_missing_unit=kind == "query")
                       if rng.random() < rate else ())
            back_side = identity.shape != "blister" and rng.random() < 0.25
            captures[kind].append(CaptureSpec(
                capture_id=f"{identity.identifier}-{kind[0]}{number}", kind=kind, number=number,
                defects=defects, tray_lookalikes=_tray_lookalikes(rng), back_side=back_side,
                printed_lookalike="" if back_side else identity.printed_lookalike,
                render_entropy=(seed, index, code, number)))
    return ItemPlan(identity, tuple(captures["query"]), tuple(captures["reference"]))


def capture_rng(spec: CaptureSpec) -> np.random.Generator:
    seed, index, code, number = spec.render_entropy
    return item_rng(seed, index, code, number)
