"""Free-space guard: stop capturing before the disk is full, never in the middle of a write.

The check runs before any file of a capture is written, against the capture's real
encoded size, so a refused capture leaves nothing behind and everything already stored
stays intact. SQLite itself needs a little room for its WAL, which the reserve
(``data.min_free_gb``) covers.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

from station_app.errors import StationError

GB = 1_000_000_000


class Usage(NamedTuple):
    total: int
    used: int
    free: int


DiskUsage = Callable[[Path], Usage]


class DiskFull(StationError):
    """Not enough free space to store a capture; capturing stops until space is made."""

    def __init__(self, message: str, free_bytes: int, needed_bytes: int) -> None:
        super().__init__(message)
        self.free_bytes = free_bytes
        self.needed_bytes = needed_bytes


@dataclass(frozen=True)
class SpaceStatus:
    free_bytes: int
    reserve_bytes: int

    @property
    def ok(self) -> bool:
        return self.free_bytes >= self.reserve_bytes

    @property
    def free_gb(self) -> float:
        return self.free_bytes / GB


class DiskGuard:
    """Refuses writes that would take free space on ``directory``'s disk below the reserve.

    ``usage`` is ``shutil.disk_usage`` by default; tests inject a fake disk.
    """

    def __init__(self, directory: Path, min_free_gb: float,
                 usage: DiskUsage | None = None) -> None:
        self.directory = Path(directory)
        self.reserve_bytes = int(min_free_gb * GB)
        self._usage = usage or (lambda path: Usage(*shutil.disk_usage(path)))

    def status(self) -> SpaceStatus:
        """Free space now; ``ok`` is False once the reserve is reached (for `status`, the UI)."""
        return SpaceStatus(self._usage(self._existing_directory()).free, self.reserve_bytes)

    def require(self, needed_bytes: int) -> None:
        """Raise DiskFull unless ``needed_bytes`` fit above the reserve."""
        free = self.status().free_bytes
        if free - needed_bytes < self.reserve_bytes:
            raise DiskFull(
                f"disk almost full: {free / GB:.2f} GB free on {self.directory}, the station keeps "
                f"{self.reserve_bytes / GB:.2f} GB free (data.min_free_gb) and this capture needs "
                f"{needed_bytes / 1e6:.1f} MB; capturing is stopped. Export and remove old confirmed "
                "captures (set data.retention_days), or free space on this disk, then capture again.",
                free, needed_bytes)

    def _existing_directory(self) -> Path:
        directory = self.directory
        while not directory.exists() and directory != directory.parent:
            directory = directory.parent
        return directory
