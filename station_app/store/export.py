"""Export confirmed captures as a data set in the Kaputt layout, for retraining.

Ground truth is the associates' confirmation, not the station's verdict: defect =
severity is not "none", major_defect = severity is "major", defect_types as confirmed.
The station's verdict and fused score ride along as extra columns for error analysis.

Queries are the confirmed captures that are not current gallery references; the
references are the galleries. (A query that is also its own item's reference would be
compared with itself.) Items go to train / validation / test by a hash of the item
identifier, so an item is in one split only and stays there as more captures arrive.
Images are copied (atomically), so the data set outlives retention in the store.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from engines.dataset import QueryRecord, ReferenceRecord, write_split
from engines.files import atomic_output
from engines.taxonomy import SPLITS
from station_app.store.capture_store import CaptureFilter, CaptureStore
from station_app.store.records import CaptureRecord

DEFAULT_FRACTIONS: dict[str, float] = {"train": 0.8, "validation": 0.1, "test": 0.1}


def split_of(item_identifier: str, fractions: dict[str, float] = DEFAULT_FRACTIONS) -> str:
    """The split of an item: a stable position in [0, 1) from its identifier's sha256."""
    if set(fractions) - set(SPLITS) or abs(sum(fractions.values()) - 1.0) > 1e-9:
        raise ValueError(f"split fractions {fractions} must name splits of {SPLITS} and sum to 1")
    digest = hashlib.sha256(item_identifier.encode("utf-8")).digest()
    position = int.from_bytes(digest[:8], "big") / 2 ** 64
    bound = 0.0
    for split in SPLITS:
        bound += fractions.get(split, 0.0)
        if position < bound:
            return split
    return [split for split in SPLITS if fractions.get(split, 0.0) > 0][-1]


@dataclass
class ExportSummary:
    """What was written, per split."""

    root: Path
    queries: dict[str, int] = field(default_factory=dict)
    references: dict[str, int] = field(default_factory=dict)

    @property
    def total_queries(self) -> int:
        return sum(self.queries.values())


def export_confirmed(store: CaptureStore, out: str | Path,
                     fractions: dict[str, float] = DEFAULT_FRACTIONS,
                     since: str | None = None, until: str | None = None,
                     progress: Callable[[int, int], None] | None = None) -> ExportSummary:
    """Write the confirmed captures taken in [``since``, ``until``) under ``out``; splits
    with no queries are not written. Existing split files are replaced, each atomically.
    ``progress(done, total)`` is called after each confirmed capture is handled."""
    root = Path(out)
    queries: dict[str, list[QueryRecord]] = {split: [] for split in SPLITS}
    references: dict[str, list[ReferenceRecord]] = {split: [] for split in SPLITS}
    confirmed = store.list(CaptureFilter(confirmed=True, since=since, until=until))
    if progress is not None and confirmed:
        progress(0, len(confirmed))
    for done, record in enumerate(confirmed, start=1):
        if not store.gallery.is_reference(record.capture_id):
            split = split_of(record.item_identifier, fractions)
            queries[split].append(_query(store, root, record))
        if progress is not None:
            progress(done, len(confirmed))
    for split in SPLITS:
        items = sorted({query.item_identifier for query in queries[split]})
        for item in items:
            for reference in store.gallery.references(item):
                record = store.get(reference.capture_id)
                assert record is not None
                image, crop, mask = _copy_images(store, root, record)
                references[split].append(ReferenceRecord(item, image, crop, mask))
    summary = ExportSummary(root)
    for split in SPLITS:
        if queries[split]:
            write_split(root, split, queries[split], references[split])
            summary.queries[split] = len(queries[split])
            summary.references[split] = len(references[split])
    return summary


def _query(store: CaptureStore, root: Path, record: CaptureRecord) -> QueryRecord:
    confirmation = record.confirmation
    assert confirmation is not None
    image, crop, mask = _copy_images(store, root, record)
    return QueryRecord(
        capture_id=record.capture_id, item_identifier=record.item_identifier,
        item_material=record.item_material, defect=confirmation.severity != "none",
        major_defect=confirmation.severity == "major", defect_types=confirmation.defect_types,
        query_image=image, query_crop=crop, query_mask=mask,
        extra={"station_verdict": record.outputs.verdict or "",
               "station_fused": float(record.outputs.fused),
               "confirmed_by": confirmation.confirmed_by})


def _copy_images(store: CaptureStore, root: Path, record: CaptureRecord) -> tuple[str, str, str]:
    """Copy tray image, item crop and mask to ``images/<capture id>/``; relative paths back."""
    relative = []
    for kind in ("tray", "item_crop", "mask"):
        source = store.path(record, kind)
        target = PurePosixPath("images", record.capture_id, source.name)
        destination = root / target
        if not (destination.exists() and destination.stat().st_size == source.stat().st_size):
            with open(source, "rb") as reader, atomic_output(destination) as writer:
                shutil.copyfileobj(reader, writer)
        relative.append(str(target))
    return relative[0], relative[1], relative[2]
