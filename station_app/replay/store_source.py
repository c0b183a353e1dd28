"""The station's own capture store as a replay source.

Each stored capture (oldest first, by capture time then id) becomes a ``ReplayCapture``
with its tray image, the station's item mask and item crop, and the item's material.

Ground truth is the associate's confirmation, as for ``store.export``: defect = severity
is not "none", major = severity "major", defect types as confirmed. Unconfirmed captures
have none: they are left out unless ``include_unconfirmed``, and then scored but kept out
of the metrics (the runner reports them, with their scores, under a stated reason).

References: the item's reference gallery *as it stood when the capture was taken*. The
gallery table holds only today's newest references, so it is rebuilt per capture:

* candidates are the item's captures confirmed non-defective (severity "none"),
* captured strictly before the query (never the query itself, nor anything later, so a
  capture is never compared with itself or with the future),
* not taken out of the gallery by a technician (a removal marks a bad reference; it is
  left out for every query, as the station leaves it out for good),
* the newest ``gallery_size`` of them, as the station keeps them.

The confirmation time is not used: a station confirms a capture before the next one,
and a corrected confirmation rewrites that time. A candidate whose tray image or mask is
missing is passed over (the next older one takes its place) and named in the capture's
``extra`` in ``results.jsonl``, so one lost file does not cost every later capture of the
item. A query whose own image is missing is skipped and counted by the runner.

The store is opened read-only (SQLite ``mode=ro``), so a replay can run beside the
station: it sees every committed capture and never blocks or changes the store.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engines.taxonomy import SPLITS
from station_app.errors import StationError
from station_app.replay.source import ReferencePaths, ReplayCapture
from station_app.store.capture_store import DATABASE_NAME, CaptureFilter, CaptureStore
from station_app.store.export import split_of
from station_app.store.records import CaptureRecord


def store_root_of(path: Path) -> Path | None:
    """The store root when ``path`` is a capture database or the folder holding one."""
    path = Path(path)
    if path.is_file() and path.name == DATABASE_NAME:
        return path.parent.resolve()
    if path.is_dir() and (path / DATABASE_NAME).is_file():
        return path.resolve()
    return None


def parse_store_time(text: str, option: str) -> str:
    """An ISO date or time as the store writes times (UTC); a time with no zone is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise StationError(f"{option} {text!r} is not an ISO date or time "
                           "(e.g. 2025-03-01 or 2025-03-01T08:00+01:00)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


class CaptureStoreSource:
    """Captures of a capture store, with confirmations as truth; see the module docstring."""

    def __init__(self, root: Path, split: str | None = None, since: str | None = None,
                 until: str | None = None, include_unconfirmed: bool = False,
                 gallery_size: int = 5) -> None:
        if split is not None and split not in SPLITS:
            raise StationError(f"split {split!r} is not one of {', '.join(SPLITS)}")
        if gallery_size < 1:
            raise StationError(f"gallery size must be at least 1, got {gallery_size}")
        self.root = Path(root).resolve()
        self.split = split
        self.since = parse_store_time(since, "--since") if since else None
        self.until = parse_store_time(until, "--until") if until else None
        if self.since and self.until and self.since >= self.until:
            raise StationError(f"--since {since} is not before --until {until}")
        self.include_unconfirmed = include_unconfirmed
        self.gallery_size = gallery_size
        self.store = CaptureStore(self.root, min_free_gb=0.0, gallery_size=gallery_size,
                                  read_only=True)
        self._captures: list[ReplayCapture] | None = None
        self._unconfirmed_left_out = 0

    def close(self) -> None:
        self.store.close()

    def describe(self) -> dict[str, Any]:
        # Selection only, no counts: a station adds captures while a run waits to resume.
        return {"kind": "capture_store", "root": str(self.root), "split": self.split or "all",
                "since": self.since, "until": self.until,
                "include_unconfirmed": self.include_unconfirmed,
                "gallery_size": self.gallery_size}

    def captures(self) -> list[ReplayCapture]:
        """Read once per source: the run and its notes see the same list."""
        if self._captures is None:
            self._captures = self._read()
        return self._captures

    def notes(self) -> list[str]:
        """What the selection left out and why (the command prints it; run.json keeps it)."""
        self.captures()
        if not self._unconfirmed_left_out:
            return []
        return [f"{self._unconfirmed_left_out} unconfirmed capture(s) not replayed: no ground "
                f"truth (--include-unconfirmed scores them, outside the metrics)"]

    # ------------------------------------------------------------------ internals

    def _read(self) -> list[ReplayCapture]:
        store = self.store
        selected = [record for record in store.list(CaptureFilter(since=self.since,
                                                                  until=self.until))
                    if self.split is None or split_of(record.item_identifier) == self.split]
        # Candidates come from the whole store: a capture after --since may use older ones.
        removed = {row["capture_id"] for row in store._query(
            "SELECT capture_id FROM gallery WHERE removed_at IS NOT NULL")}
        confirmed_ok: dict[str, list[CaptureRecord]] = defaultdict(list)
        for record in store.list(CaptureFilter(confirmed=True)):   # oldest first
            if not record.confirmation.defective and record.capture_id not in removed:
                confirmed_ok[record.item_identifier].append(record)
        result, self._unconfirmed_left_out = [], 0
        for record in selected:
            if record.confirmation is None and not self.include_unconfirmed:
                self._unconfirmed_left_out += 1
                continue
            result.append(self._capture(record, confirmed_ok[record.item_identifier]))
        return result

    def _references(self, query: CaptureRecord, candidates: list[CaptureRecord]
                    ) -> tuple[list[CaptureRecord], list[str]]:
        """The newest ``gallery_size`` usable candidates captured before ``query``, and
        the ids of newer ones passed over for missing files."""
        chosen, passed_over = [], []
        for record in reversed(candidates):                 # newest first
            if len(chosen) == self.gallery_size:
                break
            if record.capture_id == query.capture_id or record.captured_at >= query.captured_at:
                continue
            if all(self._file(record, kind).is_file() for kind in ("tray", "mask")):
                chosen.append(record)
            else:
                passed_over.append(record.capture_id)
        return chosen, passed_over

    def _file(self, record: CaptureRecord, kind: str) -> Path:
        # A record without the kind (none should exist: tray and mask are required) gets a
        # path that does not exist, so the runner reports it as missing.
        return self.root / record.files.get(kind, f"{record.capture_id}-no-{kind}")

    def _capture(self, record: CaptureRecord, candidates: list[CaptureRecord]) -> ReplayCapture:
        references, passed_over = self._references(record, candidates)
        confirmation = record.confirmation
        outputs = record.outputs
        extra: dict[str, Any] = {
            "captured_at": record.captured_at, "station_id": record.station_id,
            "station_verdict": outputs.verdict, "station_fused": outputs.fused,
            "model_versions": dict(record.model_versions),
            "reference_ids": [r.capture_id for r in references]}
        if passed_over:
            extra["references_passed_over"] = {"ids": passed_over,
                                               "reason": "tray image or mask missing"}
        if confirmation is not None:
            extra.update(confirmed_by=confirmation.confirmed_by, severity=confirmation.severity,
                         agrees=confirmation.agrees)
        crop = self._file(record, "item_crop") if "item_crop" in record.files else None
        return ReplayCapture(
            capture_id=record.capture_id, item_identifier=record.item_identifier,
            material=record.item_material,
            defect=confirmation is not None and confirmation.defective,
            major_defect=confirmation is not None and confirmation.severity == "major",
            defect_types=tuple(confirmation.defect_types) if confirmation else (),
            image=self._file(record, "tray"), mask=self._file(record, "mask"), crop=crop,
            references=tuple(ReferencePaths(self._file(r, "tray"), self._file(r, "mask"),
                                            self._file(r, "item_crop")) for r in references),
            extra=extra, labelled=confirmation is not None)
