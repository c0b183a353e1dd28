"""``RUN/results.jsonl``: one JSON object per capture, append-only, the run's memory.

Each line is flushed and fsync'd before the next capture starts, so a crash or Ctrl-C
loses at most the capture in flight. A torn last line (no newline, or not JSON) is what
such a crash leaves; it is dropped and cut off before appending. Any other bad line means
the file was edited or damaged, and is refused with its line number.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterator

from station_app.errors import StationError

SCORED = "scored"
SKIPPED = "skipped"


def _plain(value: Any) -> Any:
    """JSON-safe values: NaN/inf become null (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class ResultLog:
    """Reads back and appends to one run's ``results.jsonl``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def read(self) -> list[dict[str, Any]]:
        """Every complete record, in file order; a torn last line is cut off the file."""
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        records, good_end = [], 0
        for number, (start, line) in enumerate(self._lines(data), start=1):
            end = start + len(line)
            complete = end < len(data)           # followed by its newline
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or "capture_id" not in record:
                    raise ValueError("not a capture record")
            except ValueError as error:
                if not complete:
                    break                        # torn last line: the capture in flight
                raise StationError(f"{self.path}: line {number} is not a capture record "
                                   f"({error}); the file was edited or damaged") from error
            if not complete:
                break                            # parses, but its newline never made it
            records.append(record)
            good_end = end + 1
        if good_end < len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(good_end)
        return records

    @staticmethod
    def _lines(data: bytes) -> Iterator[tuple[int, str]]:
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            end = len(data) if end < 0 else end
            if end > start:
                yield start, data[start:end].decode("utf-8", errors="replace")
            start = end + 1

    def append(self, record: dict[str, Any]) -> None:
        """Write one record durably (flush + fsync) before returning."""
        line = json.dumps(_plain(record), allow_nan=False, sort_keys=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
