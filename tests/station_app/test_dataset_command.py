"""``station-app dataset check`` and ``dataset summary`` through the real entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from station_app.cli import main
from tests.engines.kaputt_builders import drop_column, make_clean_dataset, rewrite_cell


def test_check_of_a_clean_data_set_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_clean_dataset(tmp_path)

    code = main(["dataset", "check", str(tmp_path)])

    out, err = capsys.readouterr()
    assert code == 0
    assert out.splitlines() == [
        "0 errors, 0 warnings (train: 3 queries, 3 references; validation: 1 queries, 1 references; "
        "test: 1 queries, 1 references)"]
    assert "decoding images" in err and "30/30" in err


def test_check_lists_every_problem_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    splits = make_clean_dataset(tmp_path)
    train = tmp_path / "query-train.parquet"
    rewrite_cell(train, "item_material", 1, "wood")
    rewrite_cell(train, "defect_types", 2, "scratch")
    (tmp_path / splits["train"][0][0].query_crop).unlink()
    (tmp_path / splits["validation"][0][0].query_image).write_bytes(b"garbage" * 50)
    drop_column(tmp_path / "reference-test.parquet", "reference_crop")

    code = main(["dataset", "check", str(tmp_path), "--no-images"])

    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[:-1] == [
        f"{train}:0: query_crop: 'query/crop/c0.jpg' does not exist ({tmp_path / 'query/crop/c0.jpg'})",
        f"{train}:1: item_material: 'wood' is not a material; allowed: book_other, book_paper, "
        "book_plastic_tight_wrap, cardboard, other, paper, plastic_bubble_wrap, plastic_hard, "
        "plastic_loose_bag, plastic_tight_wrap",
        f"{train}:2: defect_types: 'scratch' is not a defect type; allowed: penetration, deformation, "
        "actuation, deconstruction, spillage, superficial, missing_unit",
        f"{tmp_path / 'query-validation.parquet'}:0: query_image: 'query/image/c3.jpg' is not an image "
        f"OpenCV can read ({tmp_path / 'query/image/c3.jpg'})",
        f"{tmp_path / 'reference-test.parquet'}: reference_crop: missing column; this file needs "
        "item_identifier, reference_image, reference_crop, reference_mask",
    ]
    assert lines[-1].startswith("5 errors, 0 warnings (train: 3 queries")


def test_check_with_only_warnings_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_clean_dataset(tmp_path)
    (tmp_path / "reference-test.parquet").unlink()

    code = main(["dataset", "check", str(tmp_path), "--no-images"])

    out = capsys.readouterr().out
    assert code == 0
    assert "reference-test.parquet: warning: no reference file" in out
    assert "0 errors, 1 warning" in out


def test_check_of_a_missing_directory_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["dataset", "check", str(tmp_path / "nowhere")])

    out = capsys.readouterr().out
    assert code == 1
    assert "does not exist" in out and out.splitlines()[-1] == "1 error, 0 warnings"


def test_summary_counts_per_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_clean_dataset(tmp_path)

    code = main(["dataset", "summary", str(tmp_path)])

    rows = {line.split()[0] + (" " + line.split()[1] if line.startswith(("type", "material")) else ""):
            line.split()[-3:] for line in capsys.readouterr().out.splitlines()[1:]}
    assert code == 0
    assert rows["queries"] == ["3", "1", "1"]
    assert rows["defective"] == ["2", "0", "1"]
    assert rows["major"] == ["1", "0", "0"]
    assert rows["references"] == ["3", "1", "1"]
    assert rows["type deformation"] == ["1", "0", "0"]
    assert rows["material cardboard"] == ["2", "0", "1"]


def test_summary_of_a_broken_data_set_fails_in_one_line(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    make_clean_dataset(tmp_path)
    rewrite_cell(tmp_path / "query-test.parquet", "item_material", 0, "wood")

    code = main(["dataset", "summary", str(tmp_path)])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and "query-test.parquet: row 0: column item_material" in err[0]
