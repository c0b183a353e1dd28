"""The capture store: one SQLite row per capture plus its image files under the store root.

Crash order is the whole design. ``add_capture`` writes every image file atomically
(temporary file, fsync, rename), fsyncs the capture's folder, and only then inserts the
row in one transaction. A process killed at any moment therefore leaves either a complete
row whose files are all on disk, or a folder with no row: an *orphan*, never reported as
a capture (``orphans()`` lists them, ``clean_orphans()`` removes them at start-up).
Removal goes the other way round (row first, then files) for the same reason.

Layout under the root::

    captures.sqlite3 (+ -wal, -shm)
    YYYY/MM/DD/<capture id>/frame.jpg tray.jpg item_crop.jpg mask.png heatmap.png

Images are RGB uint8 (as ``engines.preprocess.read_rgb`` returns them); colour images are
JPEG like the Kaputt tray images, masks and heatmaps lossless PNG.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import math
import os
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Iterator, Mapping

import cv2
import numpy as np

from engines.files import write_atomic
from station_app.errors import StationError
from station_app.store.disk import DiskGuard, DiskUsage, SpaceStatus
from station_app.store.records import (IMAGE_KINDS, REQUIRED_IMAGE_KINDS, CaptureRecord,
                                       Confirmation, ModelOutputs, utc_now)
from station_app.store.schema import (SCHEMA_VERSION, StoreSchemaError, connect,
                                      integrity_problems, schema_version)

DATABASE_NAME = "captures.sqlite3"
FILE_NAMES: dict[str, str] = {"frame": "frame.jpg", "tray": "tray.jpg", "item_crop": "item_crop.jpg",
                              "mask": "mask.png", "heatmap": "heatmap.png"}
JPEG_QUALITY = 95
# Room for the row, its WAL frames and the folder entries, on top of the image bytes.
ROW_OVERHEAD_BYTES = 1 << 20


class CaptureStoreError(StationError):
    """A capture that cannot be stored or found as asked."""


@dataclass(frozen=True)
class CaptureFilter:
    """Which captures ``CaptureStore.list`` returns; None means "any"."""

    item_identifier: str | None = None
    confirmed: bool | None = None
    verdict: str | None = None
    since: str | None = None        # ISO time, inclusive
    until: str | None = None        # ISO time, exclusive
    newest_first: bool = False
    limit: int | None = None


@dataclass(frozen=True)
class StoreHealth:
    """What ``verify`` found: database problems, captures with missing files, orphans."""

    integrity: tuple[str, ...]
    missing_files: tuple[str, ...]
    orphans: tuple[Path, ...]

    @property
    def ok(self) -> bool:
        return not self.integrity and not self.missing_files


class CaptureStore:
    """Captures of one station; safe to share between threads of one process."""

    def __init__(self, root: str | os.PathLike[str], min_free_gb: float = 1.0,
                 gallery_size: int = 5, disk_usage: DiskUsage | None = None,
                 read_only: bool = False) -> None:
        """``read_only``: a reader beside a running station (replay, reports). The database
        is opened with SQLite's ``mode=ro``: nothing is created, migrated or switched, and
        every write is refused, by this class and by SQLite itself."""
        from station_app.store.gallery import ReferenceGallery   # gallery builds on the store

        self.root = Path(root).expanduser()
        self.read_only = read_only
        if not read_only:
            self.root.mkdir(parents=True, exist_ok=True)
        self.disk = DiskGuard(self.root, min_free_gb, disk_usage)
        self._lock = threading.RLock()
        self._connection = (_connect_read_only(self.root / DATABASE_NAME) if read_only
                            else connect(self.root / DATABASE_NAME))
        self.gallery = ReferenceGallery(self, gallery_size)

    @classmethod
    def from_settings(cls, data: Any, disk_usage: DiskUsage | None = None) -> CaptureStore:
        """From ``StationConfig.data`` (``DataSettings``)."""
        return cls(data.captures, data.min_free_gb, data.gallery_size, disk_usage)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def __enter__(self) -> CaptureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writing

    def space(self) -> SpaceStatus:
        """Free space and whether capturing may go on (the workflow checks it before a capture)."""
        return self.disk.status()

    def add_capture(self, record: CaptureRecord,
                    images: Mapping[str, np.ndarray | bytes]) -> CaptureRecord:
        """Store a capture: files first, then the row. Returns the record with its file paths.

        An image may come already encoded (bytes from ``encode_image``), so a frame written
        once while the capture was pending is not compressed a second time.

        Raises DiskFull before writing anything when the files would eat into the reserve.
        """
        self._require_writable()
        missing = [kind for kind in REQUIRED_IMAGE_KINDS if images.get(kind) is None]
        if missing:
            raise CaptureStoreError(f"capture {record.capture_id}: images {', '.join(missing)} missing; "
                                    f"a capture needs {', '.join(REQUIRED_IMAGE_KINDS)}")
        unknown = set(images) - set(IMAGE_KINDS)
        if unknown:
            raise CaptureStoreError(f"capture {record.capture_id}: unknown image kinds {sorted(unknown)}; "
                                    f"allowed: {', '.join(IMAGE_KINDS)}")
        encoded = {kind: image if isinstance(image, bytes) else encode_image(kind, image)
                   for kind, image in images.items() if image is not None}
        directory = _capture_directory(record)
        files = {kind: str(directory / FILE_NAMES[kind]) for kind in encoded}
        stored = replace(record, files=files)
        size = sum(len(data) for data in encoded.values())
        with self._lock:
            if self._row(record.capture_id) is not None:
                raise CaptureStoreError(f"capture {record.capture_id} is already stored")
            self.disk.require(size + ROW_OVERHEAD_BYTES)
            folder = self.root / directory
            if folder.exists():          # left by an earlier attempt that crashed: an orphan
                shutil.rmtree(folder)
            for kind, data in encoded.items():
                write_atomic(self.root / files[kind], data)
            _fsync_directories(folder, self.root)
            try:
                with self._transaction() as connection:
                    connection.execute(_INSERT, _row_values(stored, str(directory), size))
                    if stored.confirmation is not None:
                        self.gallery._on_confirmed(connection, stored)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
        return stored

    def confirm(self, capture_id: str, confirmation: Confirmation) -> CaptureRecord:
        """Record (or correct) the associate's judgement; a confirmed-OK capture joins the
        item's reference gallery, one that is no longer OK leaves it."""
        with self._lock:
            record = self.get(capture_id)
            if record is None:
                raise CaptureStoreError(f"no capture {capture_id} to confirm")
            confirmed = replace(record, confirmation=confirmation)
            with self._transaction() as connection:
                connection.execute(
                    "UPDATE captures SET confirmed_by = ?, confirmed_at = ?, agrees = ?, severity = ?, "
                    "defect_types = ? WHERE id = ?",
                    (confirmation.confirmed_by, confirmation.confirmed_at, int(confirmation.agrees),
                     confirmation.severity, json.dumps(list(confirmation.defect_types)), capture_id))
                self.gallery._on_confirmed(connection, confirmed)
        return confirmed

    # ------------------------------------------------------------------ reading

    def get(self, capture_id: str) -> CaptureRecord | None:
        row = self._row(capture_id)
        return None if row is None else _record(row)

    def list(self, filter: CaptureFilter = CaptureFilter()) -> builtins.list[CaptureRecord]:
        """Captures matching ``filter``, oldest first unless it says newest first."""
        clauses, values = [], []
        if filter.item_identifier is not None:
            clauses.append("item_identifier = ?")
            values.append(filter.item_identifier)
        if filter.confirmed is not None:
            clauses.append("confirmed_at IS NOT NULL" if filter.confirmed else "confirmed_at IS NULL")
        if filter.verdict is not None:
            clauses.append("verdict = ?")
            values.append(filter.verdict)
        if filter.since is not None:
            clauses.append("captured_at >= ?")
            values.append(filter.since)
        if filter.until is not None:
            clauses.append("captured_at < ?")
            values.append(filter.until)
        sql = "SELECT * FROM captures"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        order = "DESC" if filter.newest_first else "ASC"
        sql += f" ORDER BY captured_at {order}, id {order}"
        if filter.limit is not None:
            sql += " LIMIT ?"
            values.append(filter.limit)
        with self._lock:
            rows = self._connection.execute(sql, values).fetchall()
        return [_record(row) for row in rows]

    def unconfirmed(self) -> builtins.list[CaptureRecord]:
        return self.list(CaptureFilter(confirmed=False))

    def count(self) -> int:
        with self._lock:
            return self._connection.execute("SELECT COUNT(*) FROM captures").fetchone()[0]

    def path(self, record: CaptureRecord, kind: str) -> Path:
        """Absolute path of one of a capture's image files."""
        if kind not in record.files:
            raise CaptureStoreError(f"capture {record.capture_id} has no {kind} image")
        return self.root / record.files[kind]

    # ------------------------------------------------------------------ health

    def orphans(self) -> builtins.list[Path]:
        """Files and folders under the root that belong to no stored capture (left by a crash
        between writing files and committing the row, or between deleting a row and its files)."""
        with self._lock:
            rows = self._connection.execute("SELECT directory, files FROM captures").fetchall()
        known = {row["directory"]: {PurePosixPath(p).name for p in json.loads(row["files"]).values()}
                 for row in rows}
        found: builtins.list[Path] = []
        for folder in _capture_folders(self.root):
            relative = folder.relative_to(self.root).as_posix()
            if relative not in known:
                found.append(folder)
                continue
            found += [entry for entry in sorted(folder.iterdir()) if entry.name not in known[relative]]
        return found

    def clean_orphans(self, min_age_s: float = 0.0) -> builtins.list[Path]:
        """Remove orphans (older than ``min_age_s``) and empty date folders; returns what went.
        Meant for start-up, while this process is the only writer."""
        self._require_writable()
        removed = []
        now = time.time()
        with self._lock:
            for orphan in self.orphans():
                with contextlib.suppress(FileNotFoundError):
                    if now - orphan.stat().st_mtime < min_age_s:
                        continue
                    if orphan.is_dir():
                        shutil.rmtree(orphan)
                    else:
                        orphan.unlink()
                    removed.append(orphan)
            _remove_empty_date_folders(self.root)
        return removed

    def verify(self) -> StoreHealth:
        """Integrity check of the database, every capture's files present, and the orphans."""
        with self._lock:
            integrity = integrity_problems(self._connection)
        missing = [f"{record.capture_id}: {kind} {record.files[kind]}"
                   for record in self.list() for kind in record.files
                   if not (self.root / record.files[kind]).is_file()]
        return StoreHealth(tuple(integrity), tuple(missing), tuple(self.orphans()))

    # ------------------------------------------------------------------ for retention and gallery

    def _require_writable(self) -> None:
        if self.read_only:
            raise CaptureStoreError(f"the capture store {self.root} is open read-only; "
                                    "only the station writes to it")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._require_writable()
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def _query(self, sql: str, values: tuple[Any, ...] = ()) -> builtins.list[sqlite3.Row]:
        with self._lock:
            return self._connection.execute(sql, values).fetchall()

    def _remove_confirmed(self, capture_ids: builtins.list[str]) -> builtins.list[str]:
        """Delete confirmed captures: rows in one transaction, then their folders. A crash
        in between leaves folders without rows, i.e. orphans, never a row without files.
        Unconfirmed captures are skipped by the SQL itself."""
        removed: builtins.list[tuple[str, str]] = []
        with self._lock, self._transaction() as connection:
            for capture_id in capture_ids:
                row = connection.execute("SELECT directory FROM captures WHERE id = ? AND "
                                         "confirmed_at IS NOT NULL", (capture_id,)).fetchone()
                if row is None:
                    continue
                connection.execute("DELETE FROM captures WHERE id = ?", (capture_id,))
                removed.append((capture_id, row["directory"]))
        with self._lock:   # a capture being added must not see its new date folder vanish
            for _, directory in removed:
                shutil.rmtree(self.root / directory, ignore_errors=True)
            _remove_empty_date_folders(self.root)
        return [capture_id for capture_id, _ in removed]

    def _row(self, capture_id: str) -> sqlite3.Row | None:
        with self._lock:
            return self._connection.execute("SELECT * FROM captures WHERE id = ?",
                                            (capture_id,)).fetchone()


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """The capture database opened with ``mode=ro``: it must exist and have this station's
    schema (a reader cannot migrate). A reader beside the station sees every committed
    capture (WAL) and never blocks it."""
    if not path.is_file():
        raise CaptureStoreError(f"no capture store at {path.parent} ({path.name} not found)")
    try:
        connection = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True,
                                     isolation_level=None, check_same_thread=False, timeout=30.0)
        connection.row_factory = sqlite3.Row
        version = schema_version(connection)
    except sqlite3.DatabaseError as error:
        raise CaptureStoreError(f"{path} is not a readable capture database: {error}") from error
    if version != SCHEMA_VERSION:
        connection.close()
        if version == 0:
            raise CaptureStoreError(f"{path} is not a capture database (no schema)")
        newer = version > SCHEMA_VERSION
        raise StoreSchemaError(
            f"{path}: capture database schema version {version} is "
            f"{'newer' if newer else 'older'} than this software's {SCHEMA_VERSION}; "
            + ("update the station software" if newer
               else "start the station once to upgrade it (a read-only reader cannot)"))
    return connection


# ---------------------------------------------------------------------- rows

_COLUMNS = (
    "id", "captured_at", "stored_at", "station_id", "operator", "item_identifier", "item_material",
    "camera_settings", "lighting_level", "calibration_profile_version", "directory", "files",
    "bytes_on_disk", "p_any", "p_major", "p_types", "reference_score", "fused", "verdict",
    "verdict_reason", "likely_types", "model_versions", "latencies_ms", "confirmed_by",
    "confirmed_at", "agrees", "severity", "defect_types", "item_p_any", "item_p_major",
)
_INSERT = f"INSERT INTO captures ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _row_values(record: CaptureRecord, directory: str, size: int) -> tuple[Any, ...]:
    outputs = record.outputs
    confirmation = record.confirmation
    return (
        record.capture_id, record.captured_at, utc_now(), record.station_id, record.operator,
        record.item_identifier, record.item_material, _json(dict(record.camera_settings)),
        record.lighting_level, record.calibration_profile_version, directory,
        _json(dict(record.files)), size,
        _nan_to_null(outputs.p_any), _nan_to_null(outputs.p_major), _json(dict(outputs.p_types)),
        outputs.reference_score, _nan_to_null(outputs.fused), outputs.verdict,
        outputs.verdict_reason, _json(list(outputs.likely_types)),
        _json(dict(record.model_versions)), _json(dict(record.latencies_ms)),
        None if confirmation is None else confirmation.confirmed_by,
        None if confirmation is None else confirmation.confirmed_at,
        None if confirmation is None else int(confirmation.agrees),
        None if confirmation is None else confirmation.severity,
        None if confirmation is None else json.dumps(list(confirmation.defect_types)),
        _nan_to_null(outputs.item_p_any), _nan_to_null(outputs.item_p_major),
    )


def _nan_to_null(value: float) -> float | None:
    """SQLite stores NaN as NULL anyway; say so explicitly and turn it back on reading."""
    return None if value is None or math.isnan(value) else value


def _null_to_nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _record(row: sqlite3.Row) -> CaptureRecord:
    confirmation = None
    if row["confirmed_at"] is not None:
        confirmation = Confirmation(row["confirmed_by"], row["severity"], bool(row["agrees"]),
                                    tuple(json.loads(row["defect_types"])), row["confirmed_at"])
    outputs = ModelOutputs(
        p_any=_null_to_nan(row["p_any"]), p_major=_null_to_nan(row["p_major"]),
        p_types=json.loads(row["p_types"]), reference_score=row["reference_score"],
        fused=_null_to_nan(row["fused"]), verdict=row["verdict"],
        likely_types=tuple(json.loads(row["likely_types"])), verdict_reason=row["verdict_reason"],
        item_p_any=row["item_p_any"], item_p_major=row["item_p_major"])
    return CaptureRecord(
        capture_id=row["id"], captured_at=row["captured_at"], station_id=row["station_id"],
        operator=row["operator"], item_identifier=row["item_identifier"], outputs=outputs,
        item_material=row["item_material"], camera_settings=json.loads(row["camera_settings"]),
        lighting_level=row["lighting_level"],
        calibration_profile_version=row["calibration_profile_version"],
        model_versions=json.loads(row["model_versions"]), latencies_ms=json.loads(row["latencies_ms"]),
        files=json.loads(row["files"]), confirmation=confirmation)


# ---------------------------------------------------------------------- files


def _capture_directory(record: CaptureRecord) -> PurePosixPath:
    moment = datetime.fromisoformat(record.captured_at)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return PurePosixPath(f"{moment:%Y}", f"{moment:%m}", f"{moment:%d}", record.capture_id)


def encode_image(kind: str, image: np.ndarray) -> bytes:
    """JPEG for colour images, PNG for masks and heatmaps (float heatmaps in [0, 1] → 0..255)."""
    array = np.asarray(image)
    if kind == "heatmap" and array.dtype != np.uint8:
        array = np.round(np.clip(np.nan_to_num(array.astype(np.float32)), 0.0, 1.0) * 255).astype(np.uint8)
    if array.dtype != np.uint8:
        raise CaptureStoreError(f"{kind} image is {array.dtype}; images are stored as uint8")
    if kind in ("mask", "heatmap"):
        if array.ndim != 2:
            raise CaptureStoreError(f"{kind} must be single-channel (H×W), got shape {array.shape}")
        ok, data = cv2.imencode(".png", array)
    else:
        if array.ndim != 3 or array.shape[2] != 3:
            raise CaptureStoreError(f"{kind} must be RGB (H×W×3), got shape {array.shape}")
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(array, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise CaptureStoreError(f"cannot encode the {kind} image")
    return data.tobytes()


def _fsync_directories(folder: Path, root: Path) -> None:
    """Make the renames (and new date folders) durable before the row that points at them."""
    current = folder
    while True:
        descriptor = os.open(current, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        if current == root or root not in current.parents:
            break
        current = current.parent


def _capture_folders(root: Path) -> Iterator[Path]:
    """Folders at YYYY/MM/DD/<id> depth."""
    for year in sorted(root.glob("[0-9][0-9][0-9][0-9]")):
        for folder in sorted(year.glob("[0-9][0-9]/[0-9][0-9]/*")):
            if folder.is_dir():
                yield folder


def _remove_empty_date_folders(root: Path) -> None:
    for pattern in ("[0-9][0-9][0-9][0-9]/[0-9][0-9]/[0-9][0-9]", "[0-9][0-9][0-9][0-9]/[0-9][0-9]",
                    "[0-9][0-9][0-9][0-9]"):
        for folder in root.glob(pattern):
            with contextlib.suppress(OSError):
                folder.rmdir()   # only succeeds when empty
