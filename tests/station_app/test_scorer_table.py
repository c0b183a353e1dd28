"""The scorers' Table 2 from a per-query scores file."""

from __future__ import annotations

import csv

import numpy as np

from station_app.scorer_table import markdown_table, read_scores
from training.evaluate_scorers import SCORE_COLUMNS


def write_scores(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(SCORE_COLUMNS)
        writer.writerows(rows)


def test_table_has_a_row_per_scorer_and_type_columns(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for index in range(60):
        defect = index % 3 == 0
        major = defect and index % 2 == 0
        types = "penetration" if index % 6 == 0 else ("spillage" if defect else "")
        noise = rng.uniform(0, 0.3)
        rows.append([f"c{index}", int(defect), int(major), types, int(index % 5 == 1), 0,
                     0.6 + noise if defect else noise,        # supervised: separates
                     0.5, 0.5,                                 # p_major, reference score
                     0.7 if defect else 0.2,                   # fused: perfect
                     ""])
    path = tmp_path / "scores.csv"
    write_scores(path, rows)
    table = markdown_table(read_scores(path))
    lines = table.splitlines()
    supervised = next(line for line in lines if line.startswith("| supervised alone"))
    fused = next(line for line in lines if line.startswith("| fused"))
    reference = next(line for line in lines if line.startswith("| reference comparison"))
    assert supervised.split("|")[2].strip() == "100.00"     # AP_any of a separating score
    assert fused.split("|")[2].strip() == "100.00"
    assert float(reference.split("|")[4]) == 50.0           # AUROC of a constant score
    assert "missing_unit" in table and "look-alikes" in table
    assert "too few" in table                                # no missing-unit queries
