"""The Kaputt taxonomy: item materials, defect types, severities and data-set splits."""

from __future__ import annotations

MATERIALS: tuple[str, ...] = (
    "book_other",
    "book_paper",
    "book_plastic_tight_wrap",
    "cardboard",
    "other",
    "paper",
    "plastic_bubble_wrap",
    "plastic_hard",
    "plastic_loose_bag",
    "plastic_tight_wrap",
)

DEFECT_TYPES: tuple[str, ...] = (
    "penetration",
    "deformation",
    "actuation",
    "deconstruction",
    "spillage",
    "superficial",
    "missing_unit",
)

SEVERITIES: tuple[str, ...] = ("none", "minor", "major")

SPLITS: tuple[str, ...] = ("train", "validation", "test")


def parse_defect_types(text: str | None) -> tuple[str, ...]:
    """Split the comma-separated ``defect_types`` column; empty or None means no types."""
    if not text:
        return ()
    return tuple(part.strip() for part in text.split(",") if part.strip())


def format_defect_types(types: tuple[str, ...] | list[str]) -> str:
    """Join defect types in taxonomy order, as the ``defect_types`` column stores them."""
    unknown = [t for t in types if t not in DEFECT_TYPES]
    if unknown:
        raise ValueError(f"unknown defect types {unknown}; allowed: {', '.join(DEFECT_TYPES)}")
    return ",".join(t for t in DEFECT_TYPES if t in types)
