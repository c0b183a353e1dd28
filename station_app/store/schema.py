"""The capture database: connection settings and a versioned schema with migrations.

Journal mode WAL: a reader (replay, export, the UI's history) never blocks the station
writing a capture, and a crash leaves the last committed state.

``synchronous=FULL``: in WAL mode NORMAL may lose the last committed transactions on
power loss (the database stays consistent, but a capture the associate saw stored and
confirmed could vanish). DESIGN.md §3 allows losing only the capture in flight, and a
station commits a few captures a minute, so one extra fsync per commit costs nothing
next to the image files' own fsyncs.

Each migration runs in one transaction together with its row in ``schema_migrations``,
so a crash during an upgrade leaves the old schema or the new one, never half.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from station_app.errors import StationError
from station_app.store.records import utc_now


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "captures with confirmation, reference gallery", """
        CREATE TABLE captures (
            id TEXT PRIMARY KEY,
            captured_at TEXT NOT NULL,
            stored_at TEXT NOT NULL,
            station_id TEXT NOT NULL,
            operator TEXT NOT NULL,
            item_identifier TEXT NOT NULL,
            item_material TEXT NOT NULL,
            camera_settings TEXT NOT NULL,          -- JSON object
            lighting_level REAL,
            calibration_profile_version TEXT NOT NULL,
            directory TEXT NOT NULL,                -- relative to the store root
            files TEXT NOT NULL,                    -- JSON: image kind -> relative path
            bytes_on_disk INTEGER NOT NULL,
            p_any REAL,                             -- NULL: the model did not run (NaN)
            p_major REAL,
            p_types TEXT NOT NULL,                  -- JSON object
            reference_score REAL,
            fused REAL,
            verdict TEXT CHECK (verdict IS NULL OR verdict IN ('OK', 'REVIEW', 'DAMAGED')),
            verdict_reason TEXT NOT NULL,
            likely_types TEXT NOT NULL,             -- JSON list
            model_versions TEXT NOT NULL,           -- JSON object
            latencies_ms TEXT NOT NULL,             -- JSON object: stage -> milliseconds
            confirmed_by TEXT,
            confirmed_at TEXT,
            agrees INTEGER CHECK (agrees IS NULL OR agrees IN (0, 1)),
            severity TEXT CHECK (severity IS NULL OR severity IN ('none', 'minor', 'major')),
            defect_types TEXT,                      -- JSON list
            -- a confirmation is whole or absent
            CHECK ((confirmed_by IS NULL) = (confirmed_at IS NULL)
                   AND (confirmed_at IS NULL) = (agrees IS NULL)
                   AND (agrees IS NULL) = (severity IS NULL)
                   AND (severity IS NULL) = (defect_types IS NULL))
        );
        CREATE INDEX captures_by_time ON captures (captured_at);
        CREATE INDEX captures_by_item ON captures (item_identifier, captured_at);
        CREATE INDEX captures_unconfirmed ON captures (captured_at) WHERE confirmed_at IS NULL;

        CREATE TABLE gallery (
            capture_id TEXT PRIMARY KEY REFERENCES captures (id) ON DELETE CASCADE,
            item_identifier TEXT NOT NULL,
            added_at TEXT NOT NULL,
            identity TEXT NOT NULL,                 -- engines.reference.file_identity of tray + mask
            removed_at TEXT,                        -- set: a technician took it out for good
            removed_by TEXT,
            removal_reason TEXT
        );
        CREATE INDEX gallery_by_item ON gallery (item_identifier, removed_at);
    """),
    Migration(2, "the item-crop scorer's own probabilities", """
        ALTER TABLE captures ADD COLUMN item_p_any REAL;     -- NULL: no item scorer ran
        ALTER TABLE captures ADD COLUMN item_p_major REAL;
    """),
)

SCHEMA_VERSION = MIGRATIONS[-1].version


class StoreSchemaError(StationError):
    """The database was written by a newer station version, or is not a capture store."""


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the capture database, with the pragmas the store relies on.

    Autocommit mode: the store opens every transaction itself with ``BEGIN IMMEDIATE``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    connection.row_factory = sqlite3.Row
    mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise StoreSchemaError(f"{path}: the file system refused WAL journaling (got {mode!r}); "
                               "put data.root on a local disk")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")
    migrate(connection, path)
    return connection


def schema_version(connection: sqlite3.Connection) -> int:
    exists = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").fetchone()
    if not exists:
        return 0
    return connection.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]


def migrate(connection: sqlite3.Connection, path: Path) -> int:
    """Apply every migration newer than the database; returns the resulting version."""
    connection.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)""")
    current = schema_version(connection)
    if current > SCHEMA_VERSION:
        raise StoreSchemaError(f"{path}: capture database schema version {current} is newer than "
                               f"this station's {SCHEMA_VERSION}; update the station software")
    for migration in MIGRATIONS:
        if migration.version <= current:
            continue
        connection.execute("BEGIN IMMEDIATE")
        try:
            if schema_version(connection) >= migration.version:   # another process got there first
                connection.execute("ROLLBACK")
                continue
            for statement in _statements(migration.sql):
                connection.execute(statement)
            connection.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)",
                               (migration.version, migration.description, utc_now()))
            connection.execute(f"PRAGMA user_version = {migration.version}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    return schema_version(connection)


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit our transaction)."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in migration: {pending.strip()[:60]}")
    return statements


def integrity_problems(connection: sqlite3.Connection) -> list[str]:
    """``PRAGMA integrity_check`` lines other than 'ok', plus foreign-key violations."""
    lines = [row[0] for row in connection.execute("PRAGMA integrity_check")]
    problems = [line for line in lines if line != "ok"]
    problems += [f"foreign key violation in {row[0]} row {row[1]}"
                 for row in connection.execute("PRAGMA foreign_key_check")]
    return problems
