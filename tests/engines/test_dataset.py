"""The Kaputt layout: writer/reader round trip, reader errors, and the checker."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engines.dataset import (
    DatasetError, Problem, QueryRecord, check_dataset, read_dataset, read_split, write_split,
)
from tests.engines.kaputt_builders import (
    IMAGE_SIZE, write_image, drop_column, make_clean_dataset, make_query, make_reference, replace_column, rewrite_cell,
)


# ---------------------------------------------------------------- round trip


def test_round_trip_keeps_records_and_extra_columns(tmp_path: Path) -> None:
    queries = [
        make_query(tmp_path, "q0", "item-a", extra={"defect_mask": "dm/q0.png", "benign_artwork": True,
                                                    "seed": 7, "severity_score": 0.25,
                                                    "tray_corners": [0.0, 1.5, 2.0, 3.25]}),
        make_query(tmp_path, "q1", "item-b", material="plastic_bubble_wrap", defect=True, major=True,
                   types=("penetration", "missing_unit"),
                   extra={"defect_mask": None, "benign_artwork": False, "seed": 8, "severity_score": 1,
                          "tray_corners": [4.0, 5.0, 6.0, 7.0]}),
    ]
    references = [make_reference(tmp_path, "item-a", extra={"frame": "frames/a.jpg"}),
                  make_reference(tmp_path, "item-b", extra={"frame": "frames/b.jpg"})]

    write_split(tmp_path, "train", queries, references)
    data = read_split(tmp_path, "train")

    assert data.queries[0] == queries[0]
    # An int among floats is stored as a float column; equal as a number.
    assert data.queries[1].extra["severity_score"] == 1.0
    assert data.queries[1].defect_types == ("penetration", "missing_unit")
    assert data.references == references
    assert data.references_for("item-a") == [references[0]]
    assert data.references_for("no-such-item") == []
    assert data.path(data.queries[0].query_image).is_file()
    assert sorted(p.name for p in tmp_path.glob("*.parquet")) == ["query-train.parquet", "reference-train.parquet"]
    assert not list(tmp_path.glob(".*.tmp")), "temporary files left behind"


def test_written_columns_have_kaputt_types(tmp_path: Path) -> None:
    write_split(tmp_path, "test", [make_query(tmp_path, "q0", "item-a", defect=True,
                                              types=("superficial", "actuation"))], [])
    table = pq.read_table(tmp_path / "query-test.parquet")

    assert table.schema.field("defect").type == pa.bool_()
    assert table.schema.field("major_defect").type == pa.bool_()
    for name in ("capture_id", "item_identifier", "item_material", "defect_types", "query_image"):
        assert table.schema.field(name).type == pa.string()
    # Comma-separated, in taxonomy order.
    assert table.column("defect_types").to_pylist() == ["actuation,superficial"]


def test_defect_types_read_from_list_column(tmp_path: Path) -> None:
    make_clean_dataset(tmp_path)
    file = tmp_path / "query-train.parquet"
    replace_column(file, "defect_types", pa.array([[], ["penetration"], ["spillage", "deformation"]],
                                                  type=pa.list_(pa.string())))

    data = read_split(tmp_path, "train")

    assert [q.defect_types for q in data.queries] == [(), ("penetration",), ("deformation", "spillage")]


def test_missing_reference_file_means_no_references(tmp_path: Path) -> None:
    make_clean_dataset(tmp_path)
    (tmp_path / "reference-validation.parquet").unlink()

    data = read_split(tmp_path, "validation")

    assert len(data.queries) == 1
    assert data.references == []


def test_read_dataset_reads_every_present_split(tmp_path: Path) -> None:
    make_clean_dataset(tmp_path)
    (tmp_path / "query-test.parquet").unlink()

    assert sorted(read_dataset(tmp_path)) == ["train", "validation"]


def test_defect_without_types_is_allowed(tmp_path: Path) -> None:
    write_split(tmp_path, "train", [make_query(tmp_path, "q0", "item-a", defect=True)], [])

    assert read_split(tmp_path, "train").queries[0].defect


# ---------------------------------------------------------------- writer errors


@pytest.mark.parametrize("fields, column", [
    ({"material": "wood"}, "item_material"),
    ({"types": ("scratch",), "defect": True}, "defect_types"),
    ({"types": ("penetration",)}, "defect_types"),
    ({"major": True}, "major_defect"),
])
def test_writer_rejects_labels_outside_the_rules(tmp_path: Path, fields: dict, column: str) -> None:
    good = make_query(tmp_path, "q0", "item-a")
    bad = make_query(tmp_path, "q1", "item-b", **fields)

    with pytest.raises(DatasetError) as caught:
        write_split(tmp_path, "train", [good, bad], [])

    assert caught.value.row == 1
    assert caught.value.column == column
    assert "query-train.parquet" in str(caught.value)
    assert not (tmp_path / "query-train.parquet").exists()


def test_writer_rejects_paths_outside_the_root(tmp_path: Path) -> None:
    query = make_query(tmp_path, "q0", "item-a")
    escaping = QueryRecord(**{**query.__dict__, "query_crop": "../elsewhere/crop.jpg"})

    with pytest.raises(DatasetError, match="escapes"):
        write_split(tmp_path, "train", [escaping], [])


def test_writer_rejects_duplicate_capture_ids(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="duplicate capture_id"):
        write_split(tmp_path, "train", [make_query(tmp_path, "q0", "a"), make_query(tmp_path, "q0", "b")], [])


def test_writer_rejects_records_with_different_extra_keys(tmp_path: Path) -> None:
    queries = [make_query(tmp_path, "q0", "item-a", extra={"seed": 1}),
               make_query(tmp_path, "q1", "item-b", extra={"seed": 2, "frame": "f.jpg"})]

    with pytest.raises(ValueError, match="same extra keys"):
        write_split(tmp_path, "train", queries, [])


def test_writer_rejects_unsupported_extra_values(tmp_path: Path) -> None:
    queries = [make_query(tmp_path, "q0", "item-a", extra={"seed": 1}),
               make_query(tmp_path, "q1", "item-b", extra={"seed": "one"})]

    with pytest.raises(DatasetError) as caught:
        write_split(tmp_path, "train", queries, [])

    assert (caught.value.row, caught.value.column) == (1, "seed")


def test_failed_write_leaves_the_previous_split_intact(tmp_path: Path) -> None:
    make_clean_dataset(tmp_path)
    before = (tmp_path / "query-train.parquet").read_bytes()

    with pytest.raises(DatasetError):
        write_split(tmp_path, "train", [make_query(tmp_path, "x", "item-x", material="wood")], [])

    assert (tmp_path / "query-train.parquet").read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))


def test_unknown_split_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown split"):
        write_split(tmp_path, "training", [], [])


# ---------------------------------------------------------------- reader errors


def _read_error(root: Path, split: str = "train") -> DatasetError:
    with pytest.raises(DatasetError) as caught:
        read_split(root, split)
    return caught.value


def test_reader_names_a_missing_column(tmp_path: Path) -> None:
    make_clean_dataset(tmp_path)
    file = tmp_path / "query-train.parquet"
    drop_column(file, "item_material")

    error = _read_error(tmp_path)

    assert str(file) in str(error)
    assert "item_material" in str(error)
    assert "missing column" in str(error)


def test_reader_names_a_path_that_does_not_exist(tmp_path: Path) -> None:
    splits = make_clean_dataset(tmp_path)
    missing = splits["train"][0][1].query_crop
    (tmp_path / missing).unlink()

    error = _read_error(tmp_path)

    assert str(tmp_path / "query-train.parquet") in str(error)
    assert "row 1" in str(error)
    assert "query_crop" in str(error)
    assert missing in str(error) and "does not exist" in str(error)


def test_reader_names_an_unreadable_image(tmp_path: Path) -> None:
    splits = make_clean_dataset(tmp_path)
    garbled = splits["train"][0][2].query_image
    (tmp_path / garbled).write_bytes(b"this is not a jpeg" * 20)

    error = _read_error(tmp_path)

    assert str(tmp_path / "query-train.parquet") in str(error)
    assert "row 2" in str(error)
    assert garbled in str(error)
    assert (error.row, error.column) == (2, "query_image")


def test_reader_names_a_material_outside_the_taxonomy(tmp_path: Path) -> None:
    make_clean_dataset(tmp_path)
    file = tmp_path / "query-train.parquet"
    rewrite_cell(file, "item_material", 1, "wood")

    error = _read_error(tmp_path)

    assert str(file) in str(error)
    assert "row 1" in str(error)
    assert "'wood'" in str(error) and "cardboard" in str(error), "message should list the allowed materials"


def test_reader_names_a_defect_type_outside_the_taxonomy(tmp_path: Path) -> None:
    make_clean_dataset(tmp_path)
    file = tmp_path / "query-train.parquet"
    rewrite_cell(file, "defect_types", 2, "deformation,scratch")

    error = _read_error(tmp_path)

    assert str(file) in str(error)
    assert "row 2" in str(error)
    assert "'scratch'" in str(error) and "penetration" in str(error)


def test_reader_names_an_error_in_the_reference_file(tmp_path: Path) -> None:
    splits = make_clean_dataset(tmp_path)
    (tmp_path / splits["train"][1][2].reference_mask).unlink()

    error = _read_error(tmp_path)

    assert str(tmp_path / "reference-train.parquet") in str(error)
    assert (error.row, error.column) == (2, "reference_mask")


def test_reader_names_a_column_of_the_wrong_type(tmp_path: Path) -> None:
    make_clean_dataset(tmp_path)
    replace_column(tmp_path / "query-train.parquet", "defect", pa.array([0, 1, 1], type=pa.int64()))

    error = _read_error(tmp_path)

    assert error.column == "defect" and "must be bool" in str(error)


def test_reader_refuses_types_on_a_non_defective_item(tmp_path: Path) -> None:
    make_clean_dataset(tmp_path)
    rewrite_cell(tmp_path / "query-train.parquet", "defect_types", 0, "superficial")

    error = _read_error(tmp_path)

    assert (error.row, error.column) == (0, "defect_types")


def test_reader_without_file_checks_ignores_missing_images(tmp_path: Path) -> None:
    splits = make_clean_dataset(tmp_path)
    (tmp_path / splits["train"][0][0].query_image).unlink()

    assert len(read_split(tmp_path, "train", check_files=False).queries) == 3


def test_reader_names_a_missing_split(tmp_path: Path) -> None:
    error = _read_error(tmp_path, "validation")

    assert "query-validation.parquet" in str(error)


# ---------------------------------------------------------------- checker


def test_checker_finds_nothing_in_a_clean_data_set(tmp_path: Path) -> None:
    make_clean_dataset(tmp_path)
    calls: list[tuple[int, int]] = []

    problems = check_dataset(tmp_path, progress=lambda done, total: calls.append((done, total)))

    assert problems == []
    # 5 queries and 5 references, three files each.
    assert calls[0] == (0, 30) and calls[-1] == (30, 30)


def _problem(problems: list[Problem], file: str, row: int | None, column: str | None,
             severity: str = "error") -> Problem:
    matches = [p for p in problems
               if (p.file.name, p.row, p.column, p.severity) == (file, row, column, severity)]
    assert len(matches) == 1, f"expected one problem at {file}:{row} {column}, got {matches} in {problems}"
    return matches[0]


def test_checker_lists_every_problem(tmp_path: Path) -> None:
    splits = make_clean_dataset(tmp_path)
    train = tmp_path / "query-train.parquet"
    train_queries, train_references = splits["train"]
    rewrite_cell(train, "item_material", 0, "wood")
    rewrite_cell(train, "defect_types", 1, "penetration,scratch")
    rewrite_cell(train, "major_defect", 0, True)
    rewrite_cell(train, "query_crop", 2, "../outside.jpg")
    (tmp_path / train_queries[1].query_image).write_bytes(b"\xff\xd8\xff\xe0 junk after a jpeg header" * 9)
    (tmp_path / train_queries[0].query_mask).unlink()
    rewrite_cell(train, "query_mask", 2, train_queries[2].query_image)  # 3 channels
    odd_size_mask = write_image(tmp_path, "reference/mask/odd-size.png", channels=1, size=IMAGE_SIZE - 3)
    rewrite_cell(tmp_path / "reference-train.parquet", "reference_mask", 0, odd_size_mask)
    rewrite_cell(tmp_path / "reference-train.parquet", "item_identifier", 2, "item-z")  # item-b loses its reference
    validation = tmp_path / "query-validation.parquet"
    rewrite_cell(validation, "capture_id", 0, "c0")  # duplicate across splits
    rewrite_cell(validation, "item_identifier", 0, "item-a")  # item in two splits
    drop_column(tmp_path / "query-test.parquet", "major_defect")
    (tmp_path / "reference-test.parquet").unlink()

    problems = check_dataset(tmp_path)

    assert "wood" in _problem(problems, "query-train.parquet", 0, "item_material").message
    assert "scratch" in _problem(problems, "query-train.parquet", 1, "defect_types").message
    assert "major" in _problem(problems, "query-train.parquet", 0, "major_defect").message
    assert "escapes" in _problem(problems, "query-train.parquet", 2, "query_crop").message
    assert "cannot be decoded" in _problem(problems, "query-train.parquet", 1, "query_image").message
    assert "does not exist" in _problem(problems, "query-train.parquet", 0, "query_mask").message
    assert "single-channel" in _problem(problems, "query-train.parquet", 2, "query_mask").message
    assert "must match" in _problem(problems, "reference-train.parquet", 0, "reference_mask").message
    assert "item-b" in _problem(problems, "query-train.parquet", 2, "item_identifier", "warning").message
    assert "item-a" in _problem(problems, "query-validation.parquet", 0, "item_identifier", "warning").message
    assert "c0" in _problem(problems, "query-validation.parquet", 0, "capture_id").message
    assert "also in split train" in _problem(problems, "query-validation.parquet", 0, "item_identifier").message
    assert "missing column" in _problem(problems, "query-test.parquet", None, "major_defect").message
    assert _problem(problems, "reference-test.parquet", None, None, "warning")
    assert len(problems) == 14, "\n".join(map(str, problems))


def test_checker_without_images_skips_decoding(tmp_path: Path) -> None:
    splits = make_clean_dataset(tmp_path)
    image = tmp_path / splits["test"][0][0].query_image
    image.write_bytes(b"\xff\xd8\xff\xe0 junk after a jpeg header" * 9)

    assert check_dataset(tmp_path, check_images=False) == []
    assert [p.column for p in check_dataset(tmp_path, check_images=True)] == ["query_image"]


def test_checker_reports_a_missing_root_and_a_root_without_splits(tmp_path: Path) -> None:
    (tmp_path / "notes.parquet").write_bytes(b"")

    missing = check_dataset(tmp_path / "nowhere")
    empty = check_dataset(tmp_path)

    assert len(missing) == 1 and "does not exist" in missing[0].message
    assert [p.severity for p in empty] == ["warning", "error"]
    assert "no split found" in empty[1].message


def test_checker_reports_an_unreadable_parquet_file(tmp_path: Path) -> None:
    make_clean_dataset(tmp_path)
    (tmp_path / "query-test.parquet").write_bytes(b"not parquet")

    problems = check_dataset(tmp_path, check_images=False)

    assert [(p.file.name, p.severity) for p in problems] == [("query-test.parquet", "error")]
    assert "cannot read parquet" in problems[0].message


def test_problem_line_names_file_row_and_column() -> None:
    problem = Problem(Path("/data/query-train.parquet"), 4, "item_material", "'wood' is not a material")
    warning = Problem(Path("/data/reference-test.parquet"), None, None, "no reference file", "warning")

    assert str(problem) == "/data/query-train.parquet:4: item_material: 'wood' is not a material"
    assert str(warning) == "/data/reference-test.parquet: warning: no reference file"
