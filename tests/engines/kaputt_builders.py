"""Tiny Kaputt-layout data sets with real image files, for reader, checker and CLI tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engines.dataset import QueryRecord, ReferenceRecord, write_split

IMAGE_SIZE = 32
CROP_SIZE = 16


def write_image(root: Path, relative: str, channels: int = 3, size: int = IMAGE_SIZE) -> str:
    """Write a small noisy image (JPEG or PNG by extension) and return its relative path."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size, size) if channels == 1 else (size, size, channels)
    pixels = np.random.default_rng(len(relative)).integers(0, 256, shape, dtype=np.uint8)
    assert cv2.imwrite(str(path), pixels)
    return relative


def make_query(root: Path, capture_id: str, item: str, material: str = "cardboard", defect: bool = False,
               major: bool = False, types: tuple[str, ...] = (),
               extra: Mapping[str, Any] | None = None) -> QueryRecord:
    return QueryRecord(
        capture_id=capture_id, item_identifier=item, item_material=material, defect=defect,
        major_defect=major, defect_types=types,
        query_image=write_image(root, f"query/image/{capture_id}.jpg"),
        query_crop=write_image(root, f"query/crop/{capture_id}.jpg", size=CROP_SIZE),
        query_mask=write_image(root, f"query/mask/{capture_id}.png", channels=1),
        extra=dict(extra or {}),
    )


def make_reference(root: Path, item: str, index: int = 0,
                   extra: Mapping[str, Any] | None = None) -> ReferenceRecord:
    name = f"{item}-{index}"
    return ReferenceRecord(
        item_identifier=item,
        reference_image=write_image(root, f"reference/image/{name}.jpg"),
        reference_crop=write_image(root, f"reference/crop/{name}.jpg", size=CROP_SIZE),
        reference_mask=write_image(root, f"reference/mask/{name}.png", channels=1),
        extra=dict(extra or {}),
    )


def make_clean_dataset(root: Path) -> dict[str, tuple[list[QueryRecord], list[ReferenceRecord]]]:
    """Three splits, distinct items, every query item with a reference; valid in every way."""
    splits = {
        "train": (
            [make_query(root, "c0", "item-a"),
             make_query(root, "c1", "item-a", defect=True, types=("penetration",)),
             make_query(root, "c2", "item-b", material="paper", defect=True, major=True,
                        types=("deformation", "spillage"))],
            [make_reference(root, "item-a"), make_reference(root, "item-a", 1), make_reference(root, "item-b")],
        ),
        "validation": ([make_query(root, "c3", "item-c", material="plastic_hard")],
                       [make_reference(root, "item-c")]),
        "test": ([make_query(root, "c4", "item-d", defect=True)], [make_reference(root, "item-d")]),
    }
    for split, (queries, references) in splits.items():
        write_split(root, split, queries, references)
    return splits


def rewrite_cell(file: Path, column: str, row: int, value: Any) -> None:
    """Change one cell of a parquet file behind the writer's back (to plant a bad value)."""
    table = pq.read_table(file)
    values = table.column(column).to_pylist()
    values[row] = value
    index = table.column_names.index(column)
    table = table.set_column(index, table.schema.field(column), pa.array(values, type=table.schema.field(column).type))
    pq.write_table(table, file)


def drop_column(file: Path, column: str) -> None:
    table = pq.read_table(file)
    pq.write_table(table.drop_columns([column]), file)


def replace_column(file: Path, column: str, array: pa.Array) -> None:
    table = pq.read_table(file)
    pq.write_table(table.set_column(table.column_names.index(column), column, array), file)
