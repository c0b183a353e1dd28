"""Reference gallery: per item identifier, the newest confirmed-OK captures to compare with.

A capture joins when an associate confirms it non-defective (severity "none"); the
gallery keeps the newest ``size`` per item (by capture time) and forgets older ones.
A technician can remove a bad reference; the removal is remembered, so confirming that
capture again does not bring it back. Each reference stores the
``engines.reference.file_identity`` of its tray image and mask, the key of its cached
features in ``ReferenceFeatureCache``: features are computed once per reference.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engines.inspection import ReferenceImage
from engines.preprocess import read_mask, read_rgb
from engines.reference.bank import file_identity
from station_app.store.records import CaptureRecord, utc_now

if TYPE_CHECKING:
    from station_app.store.capture_store import CaptureStore


@dataclass(frozen=True)
class GalleryReference:
    """One reference of an item, with absolute paths to its files."""

    capture_id: str
    item_identifier: str
    captured_at: str
    added_at: str
    identity: str
    tray_path: Path
    mask_path: Path
    item_crop_path: Path

    def reference_image(self) -> ReferenceImage:
        """For ``engines.inspection.CaptureInput.references``: loads only on a cache miss."""
        return ReferenceImage(self.identity,
                              lambda: (read_rgb(str(self.tray_path)), read_mask(str(self.mask_path))))


class ReferenceGallery:
    """The gallery tables of a ``CaptureStore`` (reached as ``store.gallery``)."""

    def __init__(self, store: CaptureStore, size: int) -> None:
        if size < 1:
            raise ValueError(f"gallery size must be at least 1, got {size}")
        self.store = store
        self.size = size

    def references(self, item_identifier: str) -> list[GalleryReference]:
        """The item's current references, newest capture first."""
        rows = self.store._query(
            "SELECT g.capture_id, g.item_identifier, g.added_at, g.identity, c.captured_at, c.files "
            "FROM gallery g JOIN captures c ON c.id = g.capture_id "
            "WHERE g.item_identifier = ? AND g.removed_at IS NULL "
            "ORDER BY c.captured_at DESC, c.id DESC LIMIT ?",   # a lowered size applies at once
            (item_identifier, self.size))
        return [self._reference(row) for row in rows]

    def reference_images(self, item_identifier: str) -> list[ReferenceImage]:
        return [reference.reference_image() for reference in self.references(item_identifier)]

    def items(self) -> list[str]:
        """Item identifiers that have at least one reference."""
        rows = self.store._query("SELECT DISTINCT item_identifier FROM gallery WHERE removed_at IS NULL "
                                 "ORDER BY item_identifier")
        return [row["item_identifier"] for row in rows]

    def is_reference(self, capture_id: str) -> bool:
        return bool(self.store._query("SELECT 1 FROM gallery WHERE capture_id = ? AND removed_at IS NULL",
                                      (capture_id,)))

    def remove_reference(self, capture_id: str, by: str, reason: str = "") -> None:
        """A technician takes a bad reference out; it stays out even if confirmed again."""
        if not by.strip():
            raise ValueError("removing a reference needs the technician's name")
        with self.store._transaction() as connection:
            updated = connection.execute(
                "UPDATE gallery SET removed_at = ?, removed_by = ?, removal_reason = ? "
                "WHERE capture_id = ? AND removed_at IS NULL", (utc_now(), by, reason, capture_id))
            if updated.rowcount == 0:
                raise KeyError(f"capture {capture_id} is not a reference")

    # Called by CaptureStore inside the transaction that stores or confirms a capture.
    def _on_confirmed(self, connection: sqlite3.Connection, record: CaptureRecord) -> None:
        confirmation = record.confirmation
        if confirmation is None or confirmation.defective:
            # No longer OK: leave the gallery, but keep a technician's removal on record.
            connection.execute("DELETE FROM gallery WHERE capture_id = ? AND removed_at IS NULL",
                               (record.capture_id,))
            return
        identity = file_identity(self.store.root / record.files["tray"],
                                 self.store.root / record.files["mask"])
        connection.execute("INSERT OR IGNORE INTO gallery (capture_id, item_identifier, added_at, identity) "
                           "VALUES (?, ?, ?, ?)",
                           (record.capture_id, record.item_identifier, utc_now(), identity))
        connection.execute(
            "DELETE FROM gallery WHERE item_identifier = ? AND removed_at IS NULL AND capture_id IN ("
            "  SELECT g.capture_id FROM gallery g JOIN captures c ON c.id = g.capture_id"
            "  WHERE g.item_identifier = ? AND g.removed_at IS NULL"
            "  ORDER BY c.captured_at DESC, c.id DESC LIMIT -1 OFFSET ?)",
            (record.item_identifier, record.item_identifier, self.size))

    def _reference(self, row: sqlite3.Row) -> GalleryReference:
        files = json.loads(row["files"])
        root = self.store.root
        return GalleryReference(row["capture_id"], row["item_identifier"], row["captured_at"],
                                row["added_at"], row["identity"], root / files["tray"],
                                root / files["mask"], root / files["item_crop"])
