"""The scorers' results table in the paper's Table 2 format, from a per-query scores file.

Rows: reference comparison alone, supervised alone (the tray scorer, then the item-crop
scorer), both supervised scorers fused without references, and fused. A scorer the file
has no scores for (an old file, or no item scorer) is left out. Then AP_any per defect type
(that type's queries against every good query) and for the look-alikes (every defective
query against the good queries carrying damage-like artwork), per scorer.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from calibration.metrics import MetricError, TABLE_COLUMNS, benchmark_metrics, breakdown
from engines.taxonomy import DEFECT_TYPES

SCORERS = (("reference comparison alone", "reference_score"),
           ("supervised alone (tray)", "p_any"),
           ("supervised alone (item crop)", "item_p_any"),
           ("supervised, tray + item crop", "fused_without_references"),
           ("fused", "fused"))


def read_scores(path: Path) -> dict[str, np.ndarray]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise MetricError(f"{path} has no rows")

    def number(text: str) -> float:
        return float(text) if text not in ("", None) else math.nan

    columns: dict[str, np.ndarray] = {
        "defect": np.array([row["defect"] == "1" for row in rows]),
        "major": np.array([row["major_defect"] == "1" for row in rows]),
        "lookalike": np.array([row["lookalike"] == "1" for row in rows]),
        "types": np.array([row["defect_types"] for row in rows], dtype=object),
    }
    for column in [column for _, column in SCORERS] + ["item_p_any"]:
        columns[column] = np.array([number(row.get(column, "")) for row in rows])
    return columns


def _cell(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.2f}"


def markdown_table(scores: dict[str, np.ndarray]) -> str:
    """Table 2 rows, then AP_any per defect type and for look-alikes, as Markdown."""
    def scored(column: str) -> bool:
        return bool(np.isfinite(scores[column]).all())
    available = [(label, column) for label, column in SCORERS if scored(column)
                 and (column != "fused_without_references" or scored("item_p_any"))]
    lines = ["| scorer | " + " | ".join(TABLE_COLUMNS) + " |",
             "|---|" + "---|" * len(TABLE_COLUMNS)]
    for label, column in available:
        metrics = benchmark_metrics(scores["defect"], scores["major"], scores[column])
        lines.append(f"| {label} | " + " | ".join(_cell(v) for v in metrics.values()) + " |")

    groups = {name: np.array([name in types.split(",") for types in scores["types"]])
              for name in DEFECT_TYPES}
    per_type = {column: breakdown(groups, scores["defect"], scores["major"], scores[column],
                                  min_positives=3, min_negatives=3)
                for _, column in available}
    lookalikes = {column: breakdown({"look-alikes": scores["lookalike"]}, scores["defect"],
                                    scores["major"], scores[column],
                                    pairing="negatives_vs_all_positives",
                                    min_positives=3, min_negatives=3)["look-alikes"]
                  for _, column in available}
    first = available[0][1] if available else None
    header = ["AP_any [%]"] + [name for name in DEFECT_TYPES] + ["look-alikes"]
    lines += ["", "| " + " | ".join(header) + " |", "|---|" + "---|" * (len(header) - 1)]
    for label, column in available:
        cells = []
        for result in list(per_type[column].values()) + [lookalikes[column]]:
            cells.append(_cell(result.metrics.ap_any) if result.metrics else "too few")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if first:
        counts = [str(per_type[first][name].positives) for name in DEFECT_TYPES]
        counts.append(str(lookalikes[first].negatives))
        lines.append("| (queries) | " + " | ".join(counts) + " |")
    return "\n".join(lines)
