"""Predictions files (DESIGN.md §3): CSV ``capture_id,pred``, pred in [0, 1].

A predictions file is only meaningful against a known set of captures: one with unknown,
missing or repeated capture ids is refused, listing them, rather than silently scored on
whatever happens to overlap.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Collection, Iterable, Mapping

from engines.files import write_atomic
from station_app.errors import StationError

HEADER = ("capture_id", "pred")
LISTED_IDS = 20


class PredictionsError(StationError):
    """A predictions file that does not match the expected captures; names the ids."""


def _listing(ids: Iterable[str]) -> str:
    ids = sorted(ids)
    shown = ", ".join(ids[:LISTED_IDS])
    return shown + (f" … and {len(ids) - LISTED_IDS} more" if len(ids) > LISTED_IDS else "")


def write_predictions(path: Path, predictions: Mapping[str, float]) -> Path:
    """Write ``capture_id,pred`` rows atomically, in the mapping's order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for capture_id, pred in predictions.items():
        writer.writerow([capture_id, f"{pred:.6f}"])
    return write_atomic(path, out.getvalue())


def read_predictions(path: Path, expected_ids: Collection[str] | None = None) -> dict[str, float]:
    """capture_id → pred. Refuses a bad header, a pred outside [0, 1], repeated ids and,
    when ``expected_ids`` is given, ids it does not know or ids it lacks (listed)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PredictionsError(f"cannot read predictions {path}: {error}") from error
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if header is None or tuple(cell.strip() for cell in header) != HEADER:
        raise PredictionsError(f"{path}: the header must be 'capture_id,pred', got {header}")
    predictions: dict[str, float] = {}
    repeated = set()
    for line, row in enumerate(rows, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise PredictionsError(f"{path}: line {line}: expected 2 fields, got {len(row)}")
        capture_id, text_value = row[0].strip(), row[1].strip()
        try:
            value = float(text_value)
        except ValueError:
            raise PredictionsError(f"{path}: line {line}: pred {text_value!r} is not a number") from None
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise PredictionsError(f"{path}: line {line}: pred {value} is not in [0, 1]")
        if capture_id in predictions:
            repeated.add(capture_id)
        predictions[capture_id] = value
    problems = []
    if repeated:
        problems.append(f"{len(repeated)} repeated capture id(s): {_listing(repeated)}")
    if expected_ids is not None:
        expected = set(expected_ids)
        unknown = set(predictions) - expected
        missing = expected - set(predictions)
        if unknown:
            problems.append(f"{len(unknown)} unknown capture id(s): {_listing(unknown)}")
        if missing:
            problems.append(f"{len(missing)} missing capture id(s): {_listing(missing)}")
    if problems:
        raise PredictionsError(f"{path} refused: " + "; ".join(problems))
    return predictions
