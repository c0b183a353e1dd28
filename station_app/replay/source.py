"""Where replayed captures come from: a ``ReplaySource`` lists them with paths and truth.

A Kaputt-layout data set is one source (``DatasetSource``); the station's capture store
is another (``store_source.CaptureStoreSource``), implementing the same small interface,
so the runner never changes. ``open_replay_source`` tells them apart by what DATA is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

from engines.dataset import DatasetError, read_split
from station_app.errors import StationError


@dataclass(frozen=True)
class ReferencePaths:
    """One reference capture's files (the mask is needed for the comparison)."""

    image: Path
    mask: Path
    crop: Path | None = None


@dataclass(frozen=True)
class ReplayCapture:
    """One capture to re-score: its files and, when known, its ground truth.

    ``labelled`` False: no ground truth (an unconfirmed capture in the store); it is scored,
    but kept out of metrics and ``predictions.csv``, and reported with the reason.
    """

    capture_id: str
    item_identifier: str
    material: str
    defect: bool
    major_defect: bool
    defect_types: tuple[str, ...]
    image: Path
    mask: Path | None                 # None: the segmenter must make one
    crop: Path | None = None
    lookalike: bool = False
    references: tuple[ReferencePaths, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)   # goes into results.jsonl
    labelled: bool = True


class ReplaySource(Protocol):
    """What the replay runner needs from a source of captures."""

    def describe(self) -> dict[str, Any]:
        """Plain data for ``run.json`` (what was replayed); equal descriptions = same source."""

    def captures(self) -> Sequence[ReplayCapture]:
        """Every capture, in a stable order (resume and ``--limit`` rely on it)."""


class DatasetSource:
    """A split of a data set in the Kaputt layout (DESIGN.md §3)."""

    def __init__(self, root: Path, split: str) -> None:
        self.root = Path(root).resolve()
        self.split = split
        try:
            # Files are not checked here: a missing image is skipped and reported per capture.
            self.dataset = read_split(self.root, split, check_files=False)
        except (DatasetError, OSError) as error:
            raise StationError(f"cannot read the {split} split of {root}: {error}") from error

    def describe(self) -> dict[str, Any]:
        return {"kind": "kaputt", "root": str(self.root), "split": self.split}

    def captures(self) -> list[ReplayCapture]:
        data = self.dataset
        result = []
        for query in data.queries:
            references = tuple(
                ReferencePaths(data.path(r.reference_image), data.path(r.reference_mask),
                               data.path(r.reference_crop) if r.reference_crop else None)
                for r in data.references_for(query.item_identifier))
            result.append(ReplayCapture(
                capture_id=query.capture_id, item_identifier=query.item_identifier,
                material=query.item_material, defect=query.defect,
                major_defect=query.major_defect, defect_types=tuple(query.defect_types),
                image=data.path(query.query_image),
                mask=data.path(query.query_mask) if query.query_mask else None,
                crop=data.path(query.query_crop) if query.query_crop else None,
                lookalike=bool(query.extra.get("lookalike", False)), references=references))
        return result


def is_kaputt_dataset(path: Path) -> bool:
    return Path(path).is_dir() and any(Path(path).glob("query-*.parquet"))


def open_replay_source(data: Path, split: str | None = None, since: str | None = None,
                       until: str | None = None, include_unconfirmed: bool = False,
                       gallery_size: int = 5) -> ReplaySource:
    """A data set in the Kaputt layout (a folder with ``query-{split}.parquet``; split
    default ``test``) or the station's capture store (its ``captures.sqlite3``, or the
    folder holding it), decided by what ``data`` is."""
    from station_app.replay.store_source import CaptureStoreSource, store_root_of

    data = Path(data)
    store_root = store_root_of(data)
    if store_root is not None:
        return CaptureStoreSource(store_root, split=split, since=since, until=until,
                                  include_unconfirmed=include_unconfirmed,
                                  gallery_size=gallery_size)
    if is_kaputt_dataset(data):
        store_only = [name for name, value in (("--since", since), ("--until", until),
                                                ("--include-unconfirmed", include_unconfirmed))
                      if value]
        if store_only:
            raise StationError(f"{', '.join(store_only)} select captures of a capture store; "
                               f"{data} is a data set (use --split)")
        return DatasetSource(data, split or "test")
    raise StationError(
        f"{data} is neither a data set in the Kaputt layout (a folder with "
        f"query-{{split}}.parquet files) nor a capture store (its captures.sqlite3 file, "
        f"or the folder holding it)")
