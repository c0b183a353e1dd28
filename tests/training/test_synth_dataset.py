"""End to end: a tiny synthetic data set in the Kaputt layout, and the ``synth`` command."""

from __future__ import annotations

import filecmp
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from engines.dataset import QUERY_COLUMNS, REFERENCE_COLUMNS
from engines.taxonomy import SPLITS
from station_app.cli import main
from training.synth import generate_dataset
from training.synth.camera import tray_crop_from_frame

ITEMS, SEED = 3, 4


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, object, list]:
    root = tmp_path_factory.mktemp("synth")
    calls = []
    summary = generate_dataset(root, ITEMS, SEED, progress=lambda d, t: calls.append((d, t)),
                               workers=1, write_frames=True)
    return root, summary, calls


def _tables(root: Path, kind: str) -> dict[str, dict[str, list]]:
    return {split: pq.read_table(root / f"{kind}-{split}.parquet").to_pydict() for split in SPLITS}


def test_layout_columns_and_progress(dataset):
    root, summary, calls = dataset
    assert calls[-1] == (ITEMS, ITEMS)
    queries, references = _tables(root, "query"), _tables(root, "reference")
    for split in SPLITS:
        assert set(QUERY_COLUMNS) | {"defect_mask", "frame", "frame_corners", "severity",
                                     "lookalike"} <= set(queries[split])
        assert set(REFERENCE_COLUMNS) | {"defect", "defect_types", "frame",
                                         "frame_corners"} <= set(references[split])
        assert len(queries[split]["capture_id"]) == summary.queries[split] > 0
        assert len(references[split]["item_identifier"]) == summary.references[split] > 0
    items_per_split = [set(queries[s]["item_identifier"]) | set(references[s]["item_identifier"])
                       for s in SPLITS]
    for a in range(len(SPLITS)):
        for b in range(a + 1, len(SPLITS)):
            assert not items_per_split[a] & items_per_split[b]


def test_files_exist_aligned_and_rewarp_to_the_tray_crop(dataset):
    root, _, _ = dataset
    rows = []
    for split, table in _tables(root, "query").items():
        for i, capture_id in enumerate(table["capture_id"]):
            rows.append({name: table[name][i] for name in table})
    for row in rows:
        for column in ("query_image", "query_crop", "query_mask", "frame"):
            assert (root / row[column]).is_file(), row[column]
        assert bool(row["defect_mask"]) == row["defect"]
        if row["defect"]:
            defect_mask = cv2.imread(str(root / row["defect_mask"]), cv2.IMREAD_GRAYSCALE)
            assert defect_mask.shape == (2048, 2048) and defect_mask.any()
        assert row["severity"] == ("none" if not row["defect"] else
                                   "major" if row["major_defect"] else "minor")
    row = rows[0]
    tray = cv2.imread(str(root / row["query_image"]))
    mask = cv2.imread(str(root / row["query_mask"]), cv2.IMREAD_GRAYSCALE)
    frame = cv2.imread(str(root / row["frame"]))
    crop = cv2.imread(str(root / row["query_crop"]))
    assert tray.shape == (2048, 2048, 3) and mask.shape == (2048, 2048)
    assert frame.shape == (3000, 4096, 3)
    assert crop.shape[0] == crop.shape[1]
    corners = np.array(row["frame_corners"], np.float32).reshape(4, 2)
    assert (corners >= 0).all() and (corners[:, 0] < 4096).all() and (corners[:, 1] < 3000).all()
    rewarped = tray_crop_from_frame(frame, corners).astype(np.int16)
    assert np.abs(rewarped - tray).mean() < 3.0   # only JPEG loss between them
    shifted = tray_crop_from_frame(frame, corners + 40).astype(np.int16)
    assert np.abs(shifted - tray).mean() > np.abs(rewarped - tray).mean() + 1.0


def test_worker_count_does_not_change_output(dataset, tmp_path):
    root, _, _ = dataset
    generate_dataset(tmp_path, ITEMS, SEED, workers=2, write_frames=False)
    for split in SPLITS:
        first = pq.read_table(root / f"query-{split}.parquet").drop(["frame"])
        second = pq.read_table(tmp_path / f"query-{split}.parquet").drop(["frame"])
        assert first.equals(second)
    for sub in ("images", "crops", "masks", "defect_masks"):
        names = sorted(p.name for p in (root / sub).iterdir())
        assert names == sorted(p.name for p in (tmp_path / sub).iterdir())
        match, mismatch, errors = filecmp.cmpfiles(root / sub, tmp_path / sub, names, shallow=False)
        assert not mismatch and not errors
    assert not any((tmp_path / "frames").iterdir())


def test_command_refuses_foreign_directory_and_too_few_items(tmp_path, capsys):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert main(["synth", "--out", str(foreign), "--items", "3"]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["synth", "--out", str(tmp_path / "new"), "--items", "2"]) == 1
    assert "at least 3" in capsys.readouterr().err


def test_command_writes_and_rewrites_a_synth_output(dataset, capsys):
    root, _, _ = dataset
    before = (root / "query-train.parquet").read_bytes()
    assert main(["synth", "--out", str(root), "--items", str(ITEMS), "--seed", str(SEED),
                 "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "train:" in out and "validation:" in out and "test:" in out and str(root) in out
    assert (root / "query-train.parquet").read_bytes() == before
