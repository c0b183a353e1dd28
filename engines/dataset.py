"""The Kaputt data-set layout: records, reader, writer and checker.

``query-{split}.parquet`` and ``reference-{split}.parquet`` under a data-set root,
image paths relative to that root (DESIGN.md §3). Synthetic sets add columns
(defect-mask path, frame path, tray corners); readers keep them in ``extra``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

QUERY_COLUMNS: tuple[str, ...] = (
    "capture_id", "item_identifier", "item_material", "defect", "major_defect",
    "defect_types", "query_image", "query_crop", "query_mask",
)
REFERENCE_COLUMNS: tuple[str, ...] = (
    "item_identifier", "reference_image", "reference_crop", "reference_mask",
)


@dataclass(frozen=True)
class QueryRecord:
    capture_id: str
    item_identifier: str
    item_material: str
    defect: bool
    major_defect: bool
    defect_types: tuple[str, ...]
    query_image: str
    query_crop: str
    query_mask: str
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReferenceRecord:
    item_identifier: str
    reference_image: str
    reference_crop: str
    reference_mask: str
    extra: Mapping[str, Any] = field(default_factory=dict)
