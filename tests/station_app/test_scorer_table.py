"""The scorers' Table 2 from a per-query scores file."""

from __future__ import annotations

import csv

import numpy as np

from station_app.scorer_table import markdown_table, read_scores
from training.evaluate_scorers import SCORE_COLUMNS


def write_scores(path, rows):
    """Rows as dicts by column name; a column a row lacks is left empty."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, SCORE_COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(rows)


def test_table_has_a_row_per_scorer_and_type_columns(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for index in range(60):
        defect = index % 3 == 0
        major = defect and index % 2 == 0
        types = "penetration" if index % 6 == 0 else ("spillage" if defect else "")
        noise = rng.uniform(0, 0.3)
        rows.append({"capture_id": f"c{index}", "defect": int(defect), "major_defect": int(major),
                     "defect_types": types, "lookalike": int(index % 5 == 1),
                     "defective_references": 0,
                     "p_any": 0.6 + noise if defect else noise,      # supervised: separates
                     "p_major": 0.5, "reference_score": 0.5,
                     "fused": 0.7 if defect else 0.2})                # fused: perfect
    path = tmp_path / "scores.csv"
    write_scores(path, rows)
    table = markdown_table(read_scores(path))
    lines = table.splitlines()
    assert "item crop" not in table          # no item scores: no item rows
    supervised = next(line for line in lines if line.startswith("| supervised alone (tray)"))
    fused = next(line for line in lines if line.startswith("| fused"))
    reference = next(line for line in lines if line.startswith("| reference comparison"))
    assert supervised.split("|")[2].strip() == "100.00"     # AP_any of a separating score
    assert fused.split("|")[2].strip() == "100.00"
    assert float(reference.split("|")[4]) == 50.0           # AUROC of a constant score
    assert "missing_unit" in table and "look-alikes" in table
    assert "too few" in table                                # no missing-unit queries


def test_item_rows_appear_with_item_scores(tmp_path):
    rows = [{"capture_id": f"c{index}", "defect": int(index % 2 == 0), "major_defect": 0,
             "defect_types": "superficial" if index % 2 == 0 else "", "lookalike": 0,
             "defective_references": 0, "p_any": 0.5, "p_major": 0.5,
             "item_p_any": 0.9 if index % 2 == 0 else 0.1, "item_p_major": 0.1,
             "reference_score": 0.5, "fused": 0.5, "fused_without_references": 0.5}
            for index in range(20)]
    path = tmp_path / "scores.csv"
    write_scores(path, rows)
    lines = markdown_table(read_scores(path)).splitlines()
    item = next(line for line in lines if line.startswith("| supervised alone (item crop)"))
    assert item.split("|")[2].strip() == "100.00"
    assert any(line.startswith("| supervised, tray + item crop") for line in lines)
