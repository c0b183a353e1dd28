"""Retention: remove the oldest confirmed captures, only when ``data.retention_days`` says so.

Never removed: unconfirmed captures (nobody has judged them yet, so they are not
expendable; the SQL that deletes also refuses them) and current gallery references
(the station still compares items with them; they age out of the gallery first).

Order on disk: the rows go in one transaction, then the folders. A crash between the two
leaves folders without rows, which the store reports as orphans and cleans at start-up;
the opposite order could leave rows pointing at deleted images.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from station_app.store.capture_store import CaptureStore


def expired_captures(store: CaptureStore, retention_days: int,
                     now: datetime | None = None) -> list[str]:
    """Ids of confirmed, non-reference captures taken more than ``retention_days`` ago,
    oldest first; none when retention is off (0)."""
    if retention_days <= 0:
        return []
    now = now or datetime.now(timezone.utc)
    cutoff = (now - timedelta(days=retention_days)).astimezone(timezone.utc).isoformat(
        timespec="microseconds")
    rows = store._query(
        "SELECT id FROM captures WHERE confirmed_at IS NOT NULL AND captured_at < ? "
        "AND id NOT IN (SELECT capture_id FROM gallery WHERE removed_at IS NULL) "
        "ORDER BY captured_at, id", (cutoff,))
    return [row["id"] for row in rows]


def apply_retention(store: CaptureStore, retention_days: int,
                    now: datetime | None = None) -> list[str]:
    """Remove expired captures (rows, then files); returns the ids removed."""
    return store._remove_confirmed(expired_captures(store, retention_days, now))
